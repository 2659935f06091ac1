"""Invocations end to end: real Chromium, fixture pages on 127.0.0.1, and the stand-in LLM scripted per
test (in both wire formats). Each method does what a user asked on the page; the controller lock,
cancellation, timeouts and every kind of LLM failure end the invocation with a code, free the lock
and leave a run record."""

from __future__ import annotations

import asyncio
import re
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from app.runtimes.models import Runtime
from tests.support import PageServer, eventually

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

PAGES = Path(__file__).resolve().parents[1] / "e2e" / "pages"


@pytest.fixture(scope="module")
def shop():
    server = PageServer(PAGES)
    yield server
    server.close()


def ref_of(body: dict, pattern: str) -> str:
    """The ref the page snapshot in this request gives the element matching `pattern`."""
    text = str(body)
    found = re.search(pattern + r"[^\n\\]*?\[ref=(\w+)\]", text)
    assert found, f"{pattern!r} is not in the snapshot sent to the model: {text[-1500:]}"
    return found.group(1)


async def connection(api, llm, provider: str = "openai-compatible", **extra) -> str:
    base = f"{llm.base}/v1" if provider != "anthropic" else llm.base
    body = {
        "label": "stand-in",
        "provider": provider,
        "baseUrl": base,
        "apiKey": "sk-test",
        "defaultModel": "standin-model",
        **extra,
    }
    created = await api.post("/v1/ai-connections", json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def browser_url(server, runtime: dict) -> str:
    """The browser's own CDP endpoint: the test's side door for setting up and checking the page (the
    in-process server has no listening socket for the proxy, and this holds no controller lock)."""
    async with server.ctx.db.transaction() as s:
        row = await s.get(Runtime, uuid.UUID(runtime["id"]))
    return row.driver_state["wsUrl"]


@asynccontextmanager
async def runtime_on(server, api, page_url: str, flat: bool = False, space: str = "default"):
    """An active runtime showing `page_url`: a seed one (no lease holds its lock), or a flat one started
    with its run connection (which yields the lock to invocations while no client is attached)."""
    if flat:
        created = await api.post("/v1/runtimes", json={"start": True, "spaceId": space})
        assert created.status_code == 201, created.text
        runtime = created.json()
        runtime["activeRunId"] = runtime["connection"]["runId"]
    else:
        created = await api.post(f"/v1/spaces/{space}/runtimes", json={})
        assert created.status_code == 201, created.text
        runtime = created.json()
    runtime["browserUrl"] = await browser_url(server, runtime)
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(runtime["browserUrl"])
        page = browser.contexts[0].pages[0] if browser.contexts[0].pages else await browser.contexts[0].new_page()
        await page.goto(page_url)
        await browser.close()
    try:
        yield runtime
    finally:
        await api.post(f"/v1/runtimes/{runtime['id']}/stop")


async def invoke(api, runtime: dict, **body) -> dict:
    created = await api.post(f"/v1/runtimes/{runtime['id']}/invocations", json=body)
    assert created.status_code == 202, created.text
    return created.json()


async def finished(api, invocation: dict, timeout_ms: int = 30_000) -> dict:
    waited = (await api.post(f"/v1/invocations/{invocation['id']}/wait", json={"timeoutMs": timeout_ms})).json()
    assert waited["timedOut"] is False, waited
    return waited["invocation"]


async def page_state(runtime: dict, expression: str):
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(runtime["browserUrl"])
        value = await browser.contexts[0].pages[-1].evaluate(expression)
        await browser.close()
    return value


@pytest.mark.parametrize("provider", ["openai-compatible", "anthropic"])
async def test_act_clicks_the_right_button(server, api, llm, shop, provider):
    await connection(api, llm, provider)
    async with runtime_on(server, api, f"{shop.url}/shop.html", flat=True) as runtime:
        llm.then(
            lambda body: {
                "tool": "perform_action",
                "args": {"ref": ref_of(body, 'button "Buy now"'), "method": "click", "description": "press Buy now"},
            }
        )
        invocation = await invoke(api, runtime, action="act", instruction="buy the mug")
        assert invocation["status"] == "queued" and invocation["entryCall"] == "stagehand.act"
        done = await finished(api, invocation)
        assert done["status"] == "succeeded", done
        assert done["result"]["success"] is True and done["result"]["actions"][0]["method"] == "click"
        assert done["result"]["actions"][0]["selector"].startswith("xpath=/html[1]/body[1]/button[1]")
        assert await page_state(runtime, "document.title") == "bought"
        # The run's record: steps, the LLM call (never the key), the command.
        events = (
            await api.get(f"/v1/runs/{runtime['activeRunId']}/events", params={"category": "invocation", "limit": 200})
        ).json()["data"]
        types = [e["type"] for e in events]
        assert types[:1] == ["invocation.created"] and "invocation.succeeded" in types
        step = next(e for e in events if e["type"] == "invocation.step")
        assert step["data"]["action"] == "click" and step["data"]["url"].endswith("/shop.html")
        call = next(e for e in events if e["type"] == "invocation.llm_call")
        assert call["data"]["inputTokens"] == 100 and call["data"]["model"] == "standin-model"
        assert "sk-test" not in str(events)
        commands = (await api.get(f"/v1/runs/{runtime['activeRunId']}/commands", params={"include": "result"})).json()[
            "data"
        ]
        assert any(
            c["id"] == invocation["id"] and c["status"] == "succeeded" and c["entryCall"] == "stagehand.act"
            for c in commands
        )


async def test_observe_lists_the_button(server, api, llm, shop):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(
            lambda body: {
                "tool": "report_elements",
                "args": {
                    "elements": [
                        {
                            "ref": ref_of(body, 'button "Buy now"'),
                            "description": "the Buy now button",
                            "method": "click",
                        }
                    ]
                },
            }
        )
        done = await finished(api, await invoke(api, runtime, action="observe", instruction="find the buy button"))
        assert done["status"] == "succeeded", done
        [element] = done["result"]["elements"]
        assert element["description"] == "the Buy now button" and element["selector"].endswith("button[1]")


async def test_extract_returns_schema_valid_data_after_one_correction(server, api, llm, shop):
    await connection(api, llm, "anthropic")
    schema = {
        "type": "object",
        "properties": {"price": {"type": "string", "pattern": r"^\$\d+$"}},
        "required": ["price"],
    }
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then({"tool": "return_data", "args": {"price": 42}}, {"tool": "return_data", "args": {"price": "$42"}})
        done = await finished(
            api, await invoke(api, runtime, action="extract", instruction="the price", outputSchema=schema)
        )
        assert done["status"] == "succeeded" and done["result"] == {"price": "$42"}, done
        # The model was told what was wrong, in the format's own tool_result.
        assert "does not match the schema" in str(llm.requests[-1]["body"]["messages"][-1])

        llm.then({"tool": "return_data", "args": {"price": 42}}, {"tool": "return_data", "args": {"cost": "$42"}})
        failed = await finished(
            api, await invoke(api, runtime, action="extract", instruction="the price", outputSchema=schema)
        )
        assert failed["status"] == "failed" and failed["error"]["code"] == "invocation.output_validation_failed"


async def test_agent_completes_a_two_page_task(server, api, llm, shop):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(
            lambda body: {"tool": "click", "args": {"ref": ref_of(body, 'link "Go to checkout"')}},
            lambda body: {"tool": "click", "args": {"ref": ref_of(body, 'button "Confirm order"')}},
            {"tool": "done", "args": {"success": True, "result": "Order confirmed"}, "text": "all done"},
        )
        done = await finished(
            api,
            await invoke(
                api, runtime, action="stagehandAgent", instruction="check out and confirm the order", maxSteps=5
            ),
        )
        assert done["status"] == "succeeded", done
        assert done["result"] == {"success": True, "result": "Order confirmed", "steps": 3}
        assert done["stepCount"] == 3
        assert await page_state(runtime, "document.getElementById('status').textContent") == "Order confirmed"


async def test_the_controller_lock_both_ways(server, api, llm, shop):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        space = runtime["spaceId"]
        # An invocation holds the lock: a CDP lease is refused while it runs...
        llm.then({"delay": 1.5, "tool": "no_match", "args": {"reason": "slow"}})
        invocation = await invoke(api, runtime, action="act", instruction="slowly")
        lease = await api.post(f"/v1/spaces/{space}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"})
        assert lease.status_code == 409 and lease.json()["details"]["holder"]["kind"] == "invocation"
        # ...and a second invocation too.
        second = await api.post(f"/v1/runtimes/{runtime['id']}/invocations", json={"action": "act", "instruction": "x"})
        assert second.status_code == 409 and second.json()["code"] == "runtime.controller_busy"
        assert (await finished(api, invocation))["status"] == "succeeded"
        # Released at the end: a lease works, and while it is held an invocation is refused.
        lease = await api.post(f"/v1/spaces/{space}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"})
        assert lease.status_code == 201, lease.text
        refused = await api.post(
            f"/v1/runtimes/{runtime['id']}/invocations", json={"action": "act", "instruction": "x"}
        )
        assert refused.status_code == 409 and refused.json()["details"]["holder"]["kind"] == "connection"


async def test_cancel_stops_between_steps_and_frees_the_runtime(server, api, llm, shop):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(*[{"delay": 0.5, "tool": "scroll", "args": {"direction": "down"}}] * 20)
        invocation = await invoke(api, runtime, action="stagehandAgent", instruction="scroll forever", maxSteps=20)
        await eventually(lambda: _status(api, invocation, "running"), timeout=10)
        cancelled = (await api.post(f"/v1/invocations/{invocation['id']}/cancel")).json()
        assert cancelled["status"] in ("cancelling", "cancelled") and cancelled["cancelRequestedAt"]
        done = await finished(api, invocation)
        assert done["status"] == "cancelled" and done["error"]["code"] == "invocation.cancelled"
        assert done["stepCount"] < 20
        lease = await api.post(
            f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
        )
        assert lease.status_code == 201


async def _status(api, invocation: dict, status: str) -> bool:
    return (await api.get(f"/v1/invocations/{invocation['id']}")).json()["status"] == status


@pytest.mark.parametrize(
    "script, code",
    [
        ([{"status": 500, "message": "model crashed"}], "invocation.stagehand_failed"),
        ([{"raw": b"<html>bad gateway</html>"}], "invocation.stagehand_failed"),
        ([{"tool": "perform_action", "args": "{not json"}], "invocation.stagehand_failed"),
        ([{"text": "I would rather chat"}], "invocation.stagehand_failed"),
    ],
)
async def test_llm_failures_fail_with_a_code_and_free_the_lock(server, api, llm, shop, script, code):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(*script)
        done = await finished(api, await invoke(api, runtime, action="act", instruction="buy"))
        assert done["status"] == "failed" and done["error"]["code"] == code, done
        assert done["error"]["message"] and "sk-test" not in str(done)
        lease = await api.post(
            f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
        )
        assert lease.status_code == 201


async def test_endpoint_down_timeout_and_step_limit(server, api, llm, shop):
    down = (
        await api.post(
            "/v1/ai-connections",
            json={
                "label": "down",
                "provider": "openai-compatible",
                "baseUrl": "http://127.0.0.1:9/v1",
                "defaultModel": "m",
            },
        )
    ).json()
    standin = await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        failed = await finished(api, await invoke(api, runtime, action="act", instruction="buy", connection=down["id"]))
        assert failed["status"] == "failed" and "cannot be reached" in failed["error"]["message"]

        llm.then({"delay": 3, "tool": "no_match", "args": {"reason": "late"}})
        slow = await finished(
            api, await invoke(api, runtime, action="act", instruction="buy", timeoutSeconds=1, connection=standin)
        )
        assert slow["status"] == "timed_out" and slow["error"]["code"] == "invocation.timed_out", slow["error"]
        await asyncio.sleep(2.5)  # let the stand-in finish that late answer

        llm.then(*[{"tool": "scroll", "args": {}}] * 2)
        endless = await finished(
            api, await invoke(api, runtime, action="stagehandAgent", instruction="x", maxSteps=2, connection=standin)
        )
        assert endless["status"] == "failed" and endless["error"]["code"] == "invocation.stagehand_incomplete", endless[
            "error"
        ]


async def test_bad_requests(server, api, llm, shop):
    cid = await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        path = f"/v1/runtimes/{runtime['id']}/invocations"
        seed = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/invocations"
        for url, body, code in (
            (path, {"action": "dance", "instruction": "x"}, "request.invalid"),
            (path, {"action": "act", "instruction": "  "}, "request.invalid"),
            (path, {"action": "act", "instruction": "x" * 20_001}, "request.invalid"),
            (
                path,
                {"action": "extract", "instruction": "x", "outputSchema": {"type": "nonsense"}},
                "invocation.output_schema_invalid",
            ),
            (seed, {"provider": "openai-agents", "method": "act", "input": {"instruction": "x"}}, "request.invalid"),
            (seed, {"provider": "stagehand", "input": {"instruction": "x"}}, "request.invalid"),
        ):
            response = await api.post(url, json=body)
            assert response.status_code == 400 and response.json()["code"] == code, (body, response.text)
        await api.patch(f"/v1/ai-connections/{cid}", json={"enabled": False})
        disabled = await api.post(path, json={"action": "act", "instruction": "x", "connection": cid})
        assert disabled.status_code == 400 and disabled.json()["code"] == "ai_credential.disabled"
        async with await server.client("other") as other:
            theirs = (
                await other.post(
                    "/v1/ai-connections",
                    json={"label": "theirs", "provider": "openai", "apiKey": "k", "defaultModel": "m"},
                )
            ).json()
        stolen = await api.post(path, json={"action": "act", "instruction": "x", "connection": theirs["id"]})
        assert stolen.status_code == 404 and stolen.json()["code"] == "ai_credential.not_found"
        # Nothing was left holding the runtime.
        lease = await api.post(
            f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
        )
        assert lease.status_code == 201


async def test_seed_shapes_and_lists(server, api, llm, shop):
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        seed = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/invocations"
        llm.then({"tool": "done", "args": {"success": True, "result": "nothing to do"}})
        older = await api.post(
            seed, json={"provider": "stagehand", "operation": "agent.execute", "input": {"instruction": "look around"}}
        )
        assert older.status_code == 202 and older.json()["method"] == "agent", older.text
        assert (await finished(api, older.json()))["status"] == "succeeded"
        llm.then({"tool": "no_match", "args": {"reason": "none"}})
        newer = await api.post(
            seed,
            json={
                "provider": "stagehand",
                "method": "act",
                "target": {"type": "browser_page", "page": "active"},
                "input": {"instruction": "press nothing"},
            },
        )
        assert (await finished(api, newer.json()))["result"]["success"] is False
        listed = (await api.get(seed)).json()
        assert [i["id"] for i in listed["data"]] == [older.json()["id"], newer.json()["id"]]
        by_run = (await api.get(f"/v1/runs/{runtime['activeRunId']}/invocations")).json()["data"]
        assert [i["id"] for i in by_run] == [older.json()["id"], newer.json()["id"]]


async def test_a_dead_workers_invocation_is_failed_and_its_lock_freed(server, api, llm, shop):
    from datetime import timedelta

    from sqlalchemy import update

    from app.core import clock
    from app.runs.command_models import Command

    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then({"delay": 1.0, "tool": "no_match", "args": {"reason": "x"}})
        invocation = await invoke(api, runtime, action="act", instruction="x")
        assert (await finished(api, invocation))["status"] == "succeeded"
        # As a process that died mid-run would leave it: running, its heartbeat old, its lock still held.
        async with server.ctx.db.transaction() as s:
            row = await s.get(Command, uuid.UUID(invocation["id"]))
            token = row.lock_token
            await s.execute(
                update(Command)
                .where(Command.id == row.id)
                .values(status="running", finished_at=None, heartbeat_at=clock.now() - timedelta(minutes=5))
            )
        await server.ctx.lock.restore(runtime["id"], token, 60_000)
        await server.ctx.invocations.recover()
        after = (await api.get(f"/v1/invocations/{invocation['id']}")).json()
        assert after["status"] == "failed" and "stopped" in after["error"]["message"]
        assert await server.ctx.lock.current(runtime["id"]) is None


async def test_the_space_chooses_connection_and_model(server, api, llm, shop):
    allowed = await connection(api, llm)
    other = (
        await api.post(
            "/v1/ai-connections",
            json={
                "label": "other",
                "provider": "openai-compatible",
                "baseUrl": f"{llm.base}/v1",
                "apiKey": "sk-test",
                "defaultModel": "m2",
            },
        )
    ).json()["id"]
    space = (
        await api.post(
            "/v1/spaces",
            json={
                "name": "ai-space",
                "mounts": {
                    "ai": {
                        "allowConnections": [allowed],
                        "defaults": {"stagehand": {"connection": allowed, "model": "special"}},
                    }
                },
            },
        )
    ).json()
    async with runtime_on(server, api, f"{shop.url}/shop.html", space=space["id"]) as runtime:
        llm.then({"tool": "no_match", "args": {"reason": "-"}})
        done = await finished(api, await invoke(api, runtime, action="act", instruction="x"))
        assert done["request"]["connection"] == allowed and done["request"]["model"] == "special"
        assert llm.requests[-1]["body"]["model"] == "special"
        refused = await api.post(
            f"/v1/runtimes/{runtime['id']}/invocations", json={"action": "act", "instruction": "x", "connection": other}
        )
        assert refused.status_code == 400 and refused.json()["code"] == "ai_credential.not_allowed"

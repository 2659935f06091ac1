"""The browserUse provider end to end: browser-use (its own virtualenv, one subprocess per invocation)
drives the runtime's real Chromium with the stand-in LLM answering in browser-use's own structured
format. Runs when the engine is installed (`.ci/run` installs it; BCTRL_BROWSER_USE_VENV says where)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from app.invocations import agents
from tests.invocations.test_invocations import PAGES, connection, finished, invoke, page_state, runtime_on, shop  # noqa: F401
from tests.support import PageServer  # noqa: F401

VENV = Path(os.environ.get("BCTRL_BROWSER_USE_VENV", "/var/cache/bctrl/browser-use-venv"))
installed = pytest.mark.skipif(not agents.installed(VENV), reason=f"browser-use is not installed in {VENV}")


async def test_without_the_engine_installed_it_says_how_to_install_it(make_server, llm, shop, tmp_path):  # noqa: F811
    async with make_server("sqlite", browser_use_venv=tmp_path / "nowhere") as server, await server.client() as api:
        await connection(api, llm)
        async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
            seed = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/invocations"
            created = await api.post(seed, json={"provider": "browser-use", "input": {"instruction": "x"}})
            assert created.status_code == 202 and created.json()["provider"] == "browserUse"
            failed = await finished(api, created.json())
            assert failed["status"] == "failed" and failed["error"]["code"] == "invocation.browser_use_failed"
            assert "bctrl-server agents install" in failed["error"]["message"]


def step(goal: str, action: dict) -> dict:
    return {"text": json.dumps({"evaluation_previous_goal": "ok", "memory": "", "next_goal": goal, "action": [action]})}


@pytest.fixture
async def bu_server(make_server):
    async with make_server("sqlite", browser_use_venv=VENV) as srv, await srv.client() as api:
        yield srv, api


@installed
async def test_browser_use_completes_a_task(bu_server, llm, shop):  # noqa: F811
    server, api = bu_server
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/checkout.html") as runtime:
        llm.then(
            step("open the shop", {"navigate": {"url": f"{shop.url}/shop.html", "new_tab": False}}),
            step("report the price", {"done": {"text": "The mug costs $42", "success": True}}),
        )
        done = await finished(
            api,
            await invoke(api, runtime, action="browserUse", instruction="what does the mug cost?", maxSteps=4),
            timeout_ms=60_000,
        )
        assert done["status"] == "succeeded", done["error"]
        assert done["result"]["result"] == "The mug costs $42" and done["result"]["success"] is True
        assert done["stepCount"] == 2
        assert (await page_state(runtime, "location.pathname")).endswith("/shop.html")
        # browser-use asked in its structured format, with our key, and nothing reached the hosted services.
        sent = llm.requests[-1]
        assert sent["headers"]["authorization"] == "Bearer sk-test"
        assert sent["body"]["response_format"]["type"] == "json_schema"
        events = (
            await api.get(f"/v1/runs/{runtime['activeRunId']}/events", params={"type": "invocation.step"})
        ).json()["data"]
        assert [e["data"]["action"] for e in events] == ["navigate", "done"]
        calls = (
            await api.get(f"/v1/runs/{runtime['activeRunId']}/events", params={"type": "invocation.llm_call"})
        ).json()["data"]
        assert [(c["data"]["inputTokens"], c["data"]["outputTokens"]) for c in calls] == [(100, 20), (100, 20)]
        assert "sk-test" not in str(calls)


@installed
async def test_browser_use_that_never_finishes(bu_server, llm, shop):  # noqa: F811
    server, api = bu_server
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(*[step("scroll", {"scroll": {"down": True, "pages": 1}})] * 3)
        done = await finished(
            api, await invoke(api, runtime, action="browserUse", instruction="scroll", maxSteps=2), timeout_ms=60_000
        )
        assert done["status"] == "failed" and done["error"]["code"] == "invocation.browser_use_incomplete", done[
            "error"
        ]


@installed
async def test_browser_use_cancelled_between_steps(bu_server, llm, shop):  # noqa: F811
    server, api = bu_server
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(*[{"delay": 0.7, **step("scroll", {"scroll": {"down": True, "pages": 1}})}] * 10)
        invocation = await invoke(api, runtime, action="browserUse", instruction="scroll", maxSteps=10)
        for _ in range(100):
            if (await api.get(f"/v1/invocations/{invocation['id']}")).json()["stepCount"] >= 1:
                break
            await asyncio.sleep(0.1)
        await api.post(f"/v1/invocations/{invocation['id']}/cancel")
        done = await finished(api, invocation, timeout_ms=30_000)
        assert done["status"] == "cancelled" and done["stepCount"] < 10, done["error"]

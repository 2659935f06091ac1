"""Tool calls in process, over both backends: a webhook tool served by the test (signed calls verified
with standardwebhooks; timeout, garbage, a wrong shape and a dead port each a documented code),
human.request answered, refused (invalid, expired, not pending) and cancelled, cancel of a webhook call
in flight (the request is aborted), files tools, the list filters and the record's shape."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core import clock
from app.toolcalls.models import ToolCall
from app.tools import service as tools
from app.tools.models import CustomTool
from tests.support import error_of, eventually, free_port
from tests.toolcalls.webhook_server import WebhookServer

V = {"BCTRL-Version": "2026-10-03"}
SUM_IN = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}
SUM_OUT = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}


@pytest.fixture
async def hook(server):
    srv = WebhookServer()
    yield srv
    srv.close()


async def make_tool(server, api, hook, path: str, timeout_ms: int = 2000, name: str | None = None) -> dict:
    name = name or f"t{uuid.uuid4().hex[:10]}"
    made = await api.post(
        "/v1/tools",
        json={
            "name": name,
            "implementation": {"type": "webhook", "url": hook.url + path, "timeoutMs": timeout_ms},
            "inputSchema": SUM_IN,
            "outputSchema": SUM_OUT,
        },
        headers=V,
    )
    assert made.status_code == 201, made.text
    async with server.ctx.db.read() as s:
        row = await s.get(CustomTool, uuid.UUID(made.json()["id"]))
    hook.secret = tools.signing_secret(server.ctx, row)
    return made.json()


async def call(api, ref: str, input: dict, wait: int = 10, **body):
    return await api.post(f"/v1/tools/{ref}/calls?wait={wait}", json={"input": input, **body}, headers=V)


async def test_a_webhook_tool_is_called_signed_and_its_answer_is_the_result(server, api, hook):
    tool = await make_tool(server, api, hook, "/sum")
    made = await call(api, tool["name"], {"a": 2, "b": 40})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["object"] == "tool_call" and body["status"] == "succeeded", body
    assert body["tool"] == tool["name"] and body["callerType"] == "api" and body["resultAvailable"] is True
    assert hook.verified == [True]
    sent = hook.seen[0]
    assert sent["id"] == body["id"] and sent["input"] == {"a": 2, "b": 40} and sent["tool"]["id"] == tool["id"]
    result = await api.get(f"/v1/tool-calls/{body['id']}/result", headers=V)
    assert result.status_code == 200 and result.json() == {"sum": 42, "callId": body["id"]}
    got = await api.get(f"/v1/tool-calls/{body['id']}", headers=V)
    assert got.json()["status"] == "succeeded" and got.json()["finishedAt"]
    # by id as well as by name
    again = await call(api, tool["id"], {"a": 1, "b": 1})
    assert again.json()["status"] == "succeeded"
    listed = await api.get(f"/v1/tool-calls?tool={tool['name']}", headers=V)
    assert {c["id"] for c in listed.json()["data"]} == {body["id"], again.json()["id"]}


@pytest.mark.parametrize(
    ("path", "code"),
    [("/slow", "tool.timed_out"), ("/garbage", "tool.output_invalid"), ("/wrong", "tool.output_invalid")],
)
async def test_a_webhook_that_times_out_or_answers_garbage_fails_the_call(server, api, hook, path, code):
    tool = await make_tool(server, api, hook, path, timeout_ms=500)
    body = (await call(api, tool["name"], {"a": 1, "b": 2})).json()
    assert body["status"] == "failed", body
    assert body["error"]["code"] == code and body["resultAvailable"] is False
    # the result of a failed call is its state, error included
    result = await api.get(f"/v1/tool-calls/{body['id']}/result", headers=V)
    assert result.json()["status"] == "failed" and result.json()["error"]["code"] == code


async def test_a_tool_naming_an_auth_secret_is_signed_with_the_vaults_value(server, api, hook):
    key = "shared-key-of-the-receiver-9f8e"
    path = f"webhooks/{uuid.uuid4().hex[:8]}"
    made = await api.post("/v1/secrets", json={"type": "value", "path": path, "value": key}, headers=V)
    assert made.status_code == 201, made.text
    tool = await make_tool(server, api, hook, "/sum")
    async with server.ctx.db.transaction() as s:
        await s.execute(
            update(CustomTool).where(CustomTool.id == uuid.UUID(tool["id"])).values(auth_secret=f"secret:{path}")
        )
    hook.secret = key.encode()  # the receiver verifies with the key it shares, as bytes
    body = (await call(api, tool["name"], {"a": 3, "b": 4})).json()
    assert body["status"] == "succeeded", body
    assert hook.verified == [True] and key not in str(hook.seen)
    async with server.ctx.db.transaction() as s:
        await s.execute(
            update(CustomTool).where(CustomTool.id == uuid.UUID(tool["id"])).values(auth_secret="secret:webhooks/none")
        )
    missing = (await call(api, tool["name"], {"a": 3, "b": 4})).json()
    assert missing["status"] == "failed" and missing["error"]["code"] == "secrets.not_found", missing


async def test_a_webhook_that_is_down_fails_unreachable(server, api, hook):
    tool = await make_tool(server, api, hook, "/sum")
    dead = f"http://127.0.0.1:{free_port()}/sum"
    async with server.ctx.db.transaction() as s:
        await s.execute(update(CustomTool).where(CustomTool.id == uuid.UUID(tool["id"])).values(url=dead))
    body = (await call(api, tool["name"], {"a": 1, "b": 2})).json()
    assert body["status"] == "failed" and body["error"]["code"] == "tool.host_unavailable", body
    assert body["error"]["retryable"] is True


async def test_the_control_planes_own_port_is_never_a_webhook_target(server, api, hook):
    tool = await make_tool(server, api, hook, "/sum")
    own = f"http://127.0.0.1:{server.ctx.settings.port}/v1/health"
    async with server.ctx.db.transaction() as s:
        await s.execute(update(CustomTool).where(CustomTool.id == uuid.UUID(tool["id"])).values(url=own))
    body = (await call(api, tool["name"], {"a": 1, "b": 2})).json()
    assert body["status"] == "failed" and body["error"]["code"] == "tool.not_allowed", body


async def test_input_that_breaks_the_tools_schema_fails_before_the_webhook_is_called(server, api, hook):
    tool = await make_tool(server, api, hook, "/sum")
    body = (await call(api, tool["name"], {"a": "x"})).json()
    assert body["status"] == "failed" and body["error"]["code"] == "tool.input_invalid"
    assert hook.seen == []


async def test_cancel_aborts_a_webhook_call_in_flight(server, api, hook):
    tool = await make_tool(server, api, hook, "/hang", timeout_ms=30_000)
    body = (await call(api, tool["name"], {"a": 1, "b": 2}, wait=0)).json()
    assert body["status"] == "running"
    await eventually(hook.hanging.is_set)
    cancelled = await api.post(f"/v1/tool-calls/{body['id']}/cancel", headers=V)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled", cancelled.text
    assert cancelled.json()["error"]["code"] == "tool_call.canceled"
    await eventually(hook.aborted.is_set)
    again = await api.post(f"/v1/tool-calls/{body['id']}/cancel", headers=V)
    assert again.status_code == 200 and again.json()["status"] == "canceled"


async def ask(api, **extra) -> dict:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
        "required": ["code"],
    }
    made = await call(api, "human.request", {"prompt": "The code from the SMS?", "schema": schema, **extra}, wait=0)
    assert made.status_code == 201, made.text
    call_id = made.json()["id"]

    async def waiting():
        got = (await api.get(f"/v1/tool-calls/{call_id}?wait=5", headers=V)).json()
        return got if got["status"] == "awaiting_input" else None

    return await eventually(waiting)


async def test_human_request_waits_for_a_valid_answer(server, api):
    pending = await ask(api)
    req = pending["inputRequest"]
    assert req["prompt"] == "The code from the SMS?" and req["schema"]["required"] == ["code"]
    assert req["handoff"] is False and req["expiresAt"]
    listed = await api.get("/v1/tool-calls?status=awaiting_input", headers=V)
    assert pending["id"] in {c["id"] for c in listed.json()["data"]}
    bad = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "12"}, headers=V)
    assert error_of(bad, 400)["code"] == "tool_call.response_invalid"
    assert (await api.get(f"/v1/tool-calls/{pending['id']}", headers=V)).json()["status"] == "awaiting_input"
    ok = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "123456"}, headers=V)
    assert ok.status_code == 200, ok.text
    done = (await api.get(f"/v1/tool-calls/{pending['id']}?wait=5", headers=V)).json()
    assert done["status"] == "succeeded", done
    assert (await api.get(f"/v1/tool-calls/{pending['id']}/result", headers=V)).json() == {"value": {"code": "123456"}}
    twice = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "654321"}, headers=V)
    assert error_of(twice, 409)["code"] == "tool_call.input_already_responded"


async def test_an_expired_input_request_fails_the_call_and_refuses_answers(server, api):
    pending = await ask(api)
    async with server.ctx.db.transaction() as s:
        await s.execute(
            update(ToolCall)
            .where(ToolCall.id == uuid.UUID(pending["id"]))
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
    late = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "123456"}, headers=V)
    assert error_of(late, 409)["code"] == "tool_call.input_expired"

    async def failed():
        got = (await api.get(f"/v1/tool-calls/{pending['id']}", headers=V)).json()
        return got if got["status"] == "failed" else None

    assert (await eventually(failed))["error"]["code"] == "tool_call.input_expired"
    later = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "123456"}, headers=V)
    assert error_of(later, 409)["code"] == "tool_call.input_expired"


async def test_cancel_ends_a_human_request_wait(server, api):
    pending = await ask(api)
    cancelled = await api.post(f"/v1/tool-calls/{pending['id']}/cancel", headers=V)
    assert cancelled.json()["status"] == "canceled"
    answer = await api.post(f"/v1/tool-calls/{pending['id']}/respond", json={"code": "123456"}, headers=V)
    assert error_of(answer, 409)["code"] == "tool_call.state_invalid"
    await asyncio.sleep(0.6)  # the executor's poll: it must not turn the call back into anything else
    assert (await api.get(f"/v1/tool-calls/{pending['id']}", headers=V)).json()["status"] == "canceled"


async def test_files_tools_read_the_spaces_files(server, api):
    up = await api.post(
        "/v1/files",
        files={"file": ("notes.txt", b"hello tool\n", "text/plain")},
        data={"path": "tc/notes.txt"},
        headers=V,
    )
    assert up.status_code == 201, up.text
    listed = (await call(api, "files.list", {"prefix": "tc/"})).json()
    assert listed["status"] == "succeeded", listed
    files = (await api.get(f"/v1/tool-calls/{listed['id']}/result", headers=V)).json()["files"]
    assert [f["path"] for f in files] == ["tc/notes.txt"]
    read = (await call(api, "files.read_text", {"path": "tc/notes.txt", "maxBytes": 5})).json()
    result = (await api.get(f"/v1/tool-calls/{read['id']}/result", headers=V)).json()
    assert result == {"text": "hello", "truncated": True}
    missing = (await call(api, "files.read_text", {"path": "tc/nope.txt"})).json()
    assert missing["status"] == "failed" and missing["error"]["code"] == "storage_file.not_found"
    # a finished call is not waiting for input, nor cancellable
    answer = await api.post(f"/v1/tool-calls/{read['id']}/respond", json={}, headers=V)
    assert error_of(answer, 409)["code"] == "tool_call.state_invalid"
    assert (
        error_of(await api.post(f"/v1/tool-calls/{read['id']}/cancel", headers=V), 409)["code"]
        == "tool_call.state_invalid"
    )


async def test_refusals_of_direct_calls(server, api):
    assert error_of(await call(api, "nope", {}), 404)["code"] == "tool.not_found"
    assert error_of(await call(api, "captcha.solve", {}), 400)["code"] == "tool.unavailable"
    assert error_of(await call(api, "browser.pages.list", {}), 400)["code"] == "tool.runtime_unavailable"
    assert error_of(await call(api, "files.list", {}, runtimeId=str(uuid.uuid4())), 404)["code"] in (
        "browser.not_found",
        "runtime.not_found",
    )
    assert error_of(await api.get(f"/v1/tool-calls/{uuid.uuid4()}", headers=V), 404)["code"] == "tool_call.not_found"
    assert error_of(await api.get("/v1/tool-calls/x/result", headers=V), 404)["code"] == "tool_call.not_found"
    assert error_of(await api.post("/v1/tools/files.list/calls", json={}, headers=V), 400)["code"]

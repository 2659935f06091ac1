"""A2A 1.0 of a hosted agent in process, over both backends: the agent card, and every bad JSON-RPC
call answered as a JSON-RPC error with HTTP 200 (parse error, invalid request, unknown method, bad
params, another agent's or an unknown task, a finished task, unsupported capabilities, the A2A-Version
header), an unknown agent 404 in the current envelope; and a task's states, artifacts and listing as the
protocol's Task (tasks recorded as rows here; running them with an LLM is tests/e2e/test_current_a2a.py).
A refused SendMessage makes no task."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.accounts.service import Principal, create_account, create_key
from app.agents import service as agents
from app.core import clock, ids
from app.runs.command_models import Command
from app.spaces import service as spaces

V = {"BCTRL-Version": "2026-10-03"}
A2A = {**V, "A2A-Version": "1.0"}


@dataclass
class Caller:
    client: httpx.AsyncClient
    p: Principal
    agent_id: str
    other_agent_id: str
    space_id: uuid.UUID

    async def rpc(self, method, params=None, *, call_id=1, agent_id=None, headers=A2A) -> dict:
        body = {"jsonrpc": "2.0", "id": call_id, "method": method}
        if params is not None:
            body["params"] = params
        return await self.raw(body, agent_id=agent_id, headers=headers)

    async def raw(self, body, *, agent_id=None, headers=A2A) -> dict:
        kwargs = {"content": body} if isinstance(body, str | bytes) else {"json": body}
        r = await self.client.post(f"/v1/agents/{agent_id or self.agent_id}/a2a", headers=headers, **kwargs)
        assert r.status_code == 200, r.text
        assert r.headers.get("A2A-Version") == "1.0"
        return r.json()


@pytest.fixture
async def caller(server):
    account = await create_account(server.ctx.db, "a2a")
    key = await create_key(server.ctx.db, account.id, "a2a")
    p = Principal(account_id=account.id, key_id=key.id)
    await spaces.default_space(server.ctx, p)
    agent = await agents.find(server.ctx, p, "browser", None)
    other = await agents.find(server.ctx, p, "browser-use", None)
    try:
        async with server.anonymous(headers={"Authorization": f"Bearer {key.secret}"}) as client:
            yield Caller(client, p, str(agent.id), str(other.id), agent.space_id)
    finally:
        server.ctx.invocations.paused = False  # record_task pauses the shared server's worker


async def record_task(server, caller: Caller, status: str, *, agent_id=None, age_s: int = 0, **values) -> str:
    """A task row as the task service records it (its runner is not what these tests are about: the
    server's worker claims nothing meanwhile, and a live row beats, so recovery leaves it alone)."""
    server.ctx.invocations.paused = True
    now = clock.now() - timedelta(seconds=age_s)
    if status in ("running", "cancelling", "awaiting_input"):
        values = {"worker": "test", "heartbeat_at": clock.now() + timedelta(hours=1), **values}
    row = Command(
        id=ids.new_id(),
        account_id=caller.p.account_id,
        space_id=caller.space_id,
        run_id=None,
        runtime_id=None,
        sequence_no=0,
        entry_call="agent.task",
        execution_mode="durable",
        status=status,
        request={},
        created_at=now,
        updated_at=now,
        provider="agent",
        method="task",
        agent_id=uuid.UUID(agent_id or caller.agent_id),
        agent_version=1,
        conversation_id=ids.new_id(),
        task_input="find the price",
        run_ids=[],
        trace_id=uuid.uuid4().hex,
        **values,
    )
    async with server.ctx.db.transaction() as s:
        s.add(row)
    return str(row.id)


async def task_count(server, caller: Caller) -> int:
    async with server.ctx.db.read() as s:
        return (
            await s.execute(select(func.count()).select_from(Command).where(Command.account_id == caller.p.account_id))
        ).scalar_one()


def error_of(answer: dict, code: int) -> dict:
    assert "result" not in answer, answer
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == code, answer
    return answer["error"]


async def test_card_names_the_agent_its_interface_and_bearer_security(server, caller):
    r = await caller.client.get(f"/v1/agents/{caller.agent_id}/a2a/.well-known/agent-card.json", headers=V)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["name"] == "browser" and card["version"] == "1"
    (interface,) = card["supportedInterfaces"]
    assert interface["url"].endswith(f"/v1/agents/{caller.agent_id}/a2a")
    assert interface["protocolBinding"] == "JSONRPC" and interface["protocolVersion"] == "1.0"
    assert card["capabilities"] == {"streaming": False, "pushNotifications": False, "extendedAgentCard": False}
    scheme = next(iter(card["securitySchemes"]))
    assert card["securitySchemes"][scheme]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert card["securityRequirements"] == [{"schemes": {scheme: {"list": []}}}]
    assert "text/plain" in card["defaultInputModes"] and card["skills"][0]["id"] == "browser"


async def test_unknown_agent_is_404_and_no_key_is_401(server, caller):
    for agent_id in (str(uuid.uuid4()), "not-an-id"):
        card = await caller.client.get(f"/v1/agents/{agent_id}/a2a/.well-known/agent-card.json", headers=V)
        assert card.status_code == 404 and card.json()["error"]["code"] == "agent.not_found", card.text
        rpc = await caller.client.post(
            f"/v1/agents/{agent_id}/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"}, headers=A2A
        )
        assert rpc.status_code == 404 and rpc.json()["error"]["code"] == "agent.not_found", rpc.text
    async with server.anonymous() as nobody:
        r = await nobody.post(f"/v1/agents/{caller.agent_id}/a2a", json={}, headers=A2A)
        assert r.status_code == 401, r.text
    # Another account's agent is not found either.
    async with await server.client("someone else") as other:
        r = await other.get(f"/v1/agents/{caller.agent_id}/a2a/.well-known/agent-card.json", headers=V)
        assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", -32700),
        ("", -32700),
        ("[]", -32600),
        ('[{"jsonrpc": "2.0", "id": 1, "method": "GetTask"}]', -32600),
        ('"SendMessage"', -32600),
        ('{"id": 1, "method": "GetTask"}', -32600),
        ('{"jsonrpc": "1.0", "id": 1, "method": "GetTask"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600),
        ('{"jsonrpc": "2.0", "method": "GetTask", "params": {"id": "x"}}', -32600),
        ('{"jsonrpc": "2.0", "id": true, "method": "GetTask"}', -32600),
        ('{"jsonrpc": "2.0", "id": {"a": 1}, "method": "GetTask"}', -32600),
    ],
)
async def test_not_a_json_rpc_request(server, caller, body, code):
    answer = await caller.raw(body)
    error_of(answer, code)
    assert answer["id"] is None or answer["id"] == 1


async def test_the_call_id_comes_back(server, caller):
    for call_id in ("abc", 7, None):
        answer = await caller.rpc("NoSuchMethod", call_id=call_id)
        assert answer["id"] == call_id
        error_of(answer, -32601)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("NoSuchMethod", -32601),
        ("message/send", -32601),  # A2A 0.3's name
        ("tasks/get", -32601),
        ("SendStreamingMessage", -32004),
        ("SubscribeToTask", -32004),
        ("GetExtendedAgentCard", -32004),
        ("CreateTaskPushNotificationConfig", -32003),
        ("ListTaskPushNotificationConfigs", -32003),
    ],
)
async def test_methods_not_offered(server, caller, method, code):
    error_of(await caller.rpc(method, {"id": "x"}), code)


async def test_a2a_version_other_than_1_0_is_refused(server, caller):
    # No header is 1.0 (the official client's rpc() sends none); a version named and not 1.x is refused.
    assert "result" in await caller.rpc("ListTasks", {}, headers=V)
    for headers in ({**V, "A2A-Version": "0.3"}, {**V, "A2A-Version": "2.0"}, {**V, "A2A-Version": "one"}):
        error = error_of(await caller.rpc("ListTasks", {}, headers=headers), -32009)
        assert "1.0" in error["message"]
    # 1.0 as a header (any patch) or as the request parameter is served.
    assert "result" in await caller.rpc("ListTasks", {}, headers={**V, "A2A-Version": "1.0.2"})
    r = await caller.client.post(
        f"/v1/agents/{caller.agent_id}/a2a?A2A-Version=1.0",
        json={"jsonrpc": "2.0", "id": 1, "method": "ListTasks"},
        headers=V,
    )
    assert "result" in r.json(), r.text


GOOD_MESSAGE = {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hello"}]}


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        (None, -32602, "message"),
        ([], -32602, "params"),
        ({}, -32602, "message"),
        ({"message": "hello"}, -32602, "message"),
        ({"message": {**GOOD_MESSAGE, "parts": []}}, -32602, "message.parts"),
        ({"message": {k: v for k, v in GOOD_MESSAGE.items() if k != "messageId"}}, -32602, "message.messageId"),
        ({"message": {**GOOD_MESSAGE, "role": "ROLE_AGENT"}}, -32602, "message.role"),
        ({"message": {**GOOD_MESSAGE, "role": "user"}}, -32602, "message.role"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"text": "a", "data": {}}]}}, -32602, "message.parts[0]"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"mediaType": "text/plain"}]}}, -32602, "message.parts[0]"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"text": 5}]}}, -32602, "message.parts[0].text"),
        ({"message": {**GOOD_MESSAGE, "metadata": "x"}}, -32602, "message.metadata"),
        ({"message": GOOD_MESSAGE, "configuration": {"returnImmediately": "yes"}}, -32602, None),
        ({"message": GOOD_MESSAGE, "configuration": {"historyLength": -1}}, -32602, None),
        ({"message": {**GOOD_MESSAGE, "metadata": {"spaceId": 5}}}, -32602, "message.metadata.spaceId"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"text": "a\u0000b"}]}}, -32602, "params.message.parts.0.text"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"data": {"n": 2**63}}]}}, -32602, "params.message.parts.0.data.n"),
        ({"message": {**GOOD_MESSAGE, "parts": [{"url": "http://127.0.0.1/a.png"}]}}, -32005, None),
        ({"message": {**GOOD_MESSAGE, "parts": [{"raw": "aGk="}]}}, -32005, None),
        ({"message": GOOD_MESSAGE, "configuration": {"acceptedOutputModes": ["image/png"]}}, -32005, None),
        (
            {"message": GOOD_MESSAGE, "configuration": {"taskPushNotificationConfig": {"url": "http://x"}}},
            -32003,
            None,
        ),
        ({"message": {**GOOD_MESSAGE, "taskId": str(uuid.uuid4())}}, -32001, None),
        ({"message": {**GOOD_MESSAGE, "taskId": "nope"}}, -32001, None),
        ({"message": {**GOOD_MESSAGE, "contextId": str(uuid.uuid4())}}, -32602, None),
        ({"message": {**GOOD_MESSAGE, "metadata": {"browserId": "no-such-browser"}}}, -32602, None),
        ({"message": {**GOOD_MESSAGE, "metadata": {"spaceId": str(uuid.uuid4())}}}, -32602, None),
    ],
)
async def test_bad_send_message(server, caller, params, code, field):
    before = await task_count(server, caller)
    error = error_of(await caller.rpc("SendMessage", params), code)
    if field is not None:
        fields = [v["field"] for d in error["data"] for v in d.get("fieldViolations", [])]
        assert field in fields, error
    assert await task_count(server, caller) == before  # nothing was made


async def test_refusals_of_ours_carry_our_code(server, caller):
    # This account has no AI credential: the task service refuses before anything is made.
    error = error_of(await caller.rpc("SendMessage", {"message": GOOD_MESSAGE}), -32602)
    (info,) = error["data"]
    assert info["@type"].endswith("google.rpc.ErrorInfo") and info["reason"] == "ai_credential.not_configured", error
    assert info["metadata"]["httpStatus"] == "400"


async def test_messages_to_tasks_that_cannot_take_them(server, caller):
    finished = await record_task(server, caller, "succeeded", output="42", finished_at=clock.now())
    error_of(await caller.rpc("SendMessage", {"message": {**GOOD_MESSAGE, "taskId": finished}}), -32004)
    mine = await record_task(server, caller, "awaiting_input", input_request={"id": str(uuid.uuid4())})
    # The task's context is not another one.
    error = error_of(
        await caller.rpc("SendMessage", {"message": {**GOOD_MESSAGE, "taskId": mine, "contextId": str(uuid.uuid4())}}),
        -32602,
    )
    assert "contextId" in error["message"]
    # Another agent's task is not found through this agent.
    theirs = await record_task(server, caller, "running", agent_id=caller.other_agent_id)
    error_of(await caller.rpc("SendMessage", {"message": {**GOOD_MESSAGE, "taskId": theirs}}), -32001)
    error_of(await caller.rpc("GetTask", {"id": theirs}), -32001)
    error_of(await caller.rpc("CancelTask", {"id": theirs}), -32001)
    assert (await caller.rpc("GetTask", {"id": theirs}, agent_id=caller.other_agent_id))["result"]["id"] == theirs


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("GetTask", None, -32602),
        ("GetTask", {}, -32602),
        ("GetTask", {"id": 5}, -32602),
        ("GetTask", {"id": "x", "historyLength": -1}, -32602),
        ("GetTask", {"id": str(uuid.uuid4())}, -32001),
        ("GetTask", {"id": "not-an-id"}, -32001),
        ("CancelTask", {}, -32602),
        ("CancelTask", {"id": str(uuid.uuid4())}, -32001),
        ("ListTasks", [], -32602),
        ("ListTasks", {"status": "done"}, -32602),
        ("ListTasks", {"pageSize": 0}, -32602),
        ("ListTasks", {"pageSize": 101}, -32602),
        ("ListTasks", {"pageSize": "5"}, -32602),
        ("ListTasks", {"pageToken": "garbage"}, -32602),
        ("ListTasks", {"contextId": "not-a-context"}, -32602),
        ("ListTasks", {"statusTimestampAfter": "yesterday"}, -32602),
        ("ListTasks", {"includeArtifacts": "yes"}, -32602),
    ],
)
async def test_bad_task_calls(server, caller, method, params, code):
    error_of(await caller.rpc(method, params), code)


async def test_finished_tasks_are_not_cancelable(server, caller):
    for status in ("succeeded", "failed", "cancelled", "timed_out"):
        task_id = await record_task(server, caller, status, finished_at=clock.now())
        error_of(await caller.rpc("CancelTask", {"id": task_id}), -32002)


async def test_cancel_of_a_queued_task_is_canceled_at_once(server, caller):
    task_id = await record_task(server, caller, "queued")
    task = (await caller.rpc("CancelTask", {"id": task_id}))["result"]
    assert task["id"] == task_id and task["status"]["state"] == "TASK_STATE_CANCELED"
    got = (await caller.rpc("GetTask", {"id": task_id}))["result"]
    assert got["status"]["state"] == "TASK_STATE_CANCELED"


async def test_task_states_as_the_protocol_says(server, caller):
    done = await record_task(server, caller, "succeeded", output={"price": 42}, finished_at=clock.now())
    task = (await caller.rpc("GetTask", {"id": done}))["result"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED" and task["contextId"]
    (artifact,) = task["artifacts"]
    assert artifact["parts"] == [{"data": {"price": 42}, "mediaType": "application/json"}]
    assert task["history"][0]["role"] == "ROLE_USER" and task["history"][0]["parts"] == [{"text": "find the price"}]
    assert task["metadata"]["bctrl"]["agentId"] == caller.agent_id
    assert "history" not in (await caller.rpc("GetTask", {"id": done, "historyLength": 0}))["result"]

    asking = await record_task(
        server,
        caller,
        "awaiting_input",
        input_request={"id": str(uuid.uuid4()), "kind": "question", "summary": "Which size?", "schema": {}},
    )
    task = (await caller.rpc("GetTask", {"id": asking}))["result"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    message = task["status"]["message"]
    assert message["role"] == "ROLE_AGENT" and message["parts"][0] == {"text": "Which size?"}
    assert task["artifacts"] == []

    failed = await record_task(
        server, caller, "timed_out", error={"code": "task.timed_out", "message": "Too slow"}, finished_at=clock.now()
    )
    task = (await caller.rpc("GetTask", {"id": failed}))["result"]
    assert task["status"]["state"] == "TASK_STATE_FAILED"
    assert task["status"]["message"]["metadata"]["errorCode"] == "task.timed_out"
    running = await record_task(server, caller, "cancelling")
    assert (await caller.rpc("GetTask", {"id": running}))["result"]["status"]["state"] == "TASK_STATE_WORKING"


async def test_list_tasks_newest_update_first_with_pages_filters_and_total(server, caller):
    made = [await record_task(server, caller, "succeeded", age_s=100 - i, output=str(i)) for i in range(5)]
    failed = await record_task(server, caller, "failed", age_s=1, error={"code": "x", "message": "y"})
    await record_task(server, caller, "succeeded", agent_id=caller.other_agent_id)

    first = (await caller.rpc("ListTasks", {"pageSize": 4}))["result"]
    assert [t["id"] for t in first["tasks"]] == [failed, *made[::-1][:3]]
    assert first["totalSize"] == 6 and first["pageSize"] == 4 and first["nextPageToken"]
    assert all("artifacts" not in t for t in first["tasks"])  # includeArtifacts is false by default
    rest = (await caller.rpc("ListTasks", {"pageSize": 4, "pageToken": first["nextPageToken"]}))["result"]
    assert [t["id"] for t in rest["tasks"]] == made[::-1][3:] and rest["nextPageToken"] == ""

    completed = (await caller.rpc("ListTasks", {"status": "TASK_STATE_COMPLETED", "includeArtifacts": True}))["result"]
    assert {t["id"] for t in completed["tasks"]} == set(made) and completed["totalSize"] == 5
    assert all(t["artifacts"] for t in completed["tasks"])
    assert (await caller.rpc("ListTasks", {"status": "TASK_STATE_REJECTED"}))["result"]["tasks"] == []

    context = (await caller.rpc("GetTask", {"id": made[0]}))["result"]["contextId"]
    in_context = (await caller.rpc("ListTasks", {"contextId": context}))["result"]
    assert [t["id"] for t in in_context["tasks"]] == [made[0]]
    recent = await caller.rpc("ListTasks", {"statusTimestampAfter": clock.iso(clock.now() - timedelta(seconds=50))})
    assert [t["id"] for t in recent["result"]["tasks"]] == [failed]

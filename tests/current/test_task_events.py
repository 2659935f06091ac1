"""A task's events and trace, also for a task with no browser: events written with the task, conversation
and agent (through the batching writer and in a transaction) are listed by `GET /v1/events?task=…`,
`?conversation=…` and `?agent=…` in the current shape (category agent, actor agent, outcome), one by id,
never to another account or space; `GET /v1/traces/{traceId}` with the task's id answers its span tree;
the retention purge removes old run-less events; the event stream follows a task's run-less events and
resumes after one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import orjson
import pytest
from sqlalchemy import select, update

from app.core import clock, ids
from app.current import event_shapes
from app.runs import events, events_query, streams
from app.runs import service as runs_service
from app.runs.command_models import Command
from app.runs.models import RunEvent
from app.runs.writer import EventWriter
from tests.current.runs import active_run, task_row

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


def _keys(task: Command) -> dict:
    return {"task_id": task.id, "conversation_id": task.conversation_id, "agent_id": task.agent_id}


async def _flush(writer: EventWriter) -> None:
    while writer.pending or writer._dropped:
        await writer.flush()


async def _story(server, task: Command) -> None:
    """What a task runner records of one task: started, a step with an LLM call and a tool call, the end."""
    writer = EventWriter(server.ctx.db)
    keys = _keys(task)
    body = {"taskId": str(task.id)}
    writer.emit(None, "task.started", "task", {**body, "model": "openai/gpt-test"}, source="api", **keys)
    writer.emit(
        None,
        "task.llm_call",
        "task",
        {**body, "model": "openai/gpt-test", "latencyMs": 250, "inputTokens": 12, "outputTokens": 3},
        source="api",
        **keys,
    )
    call = {**body, "toolCallId": str(ids.new_id()), "tool": "files.list", "callerType": "agent"}
    writer.emit(None, "tool_call.started", "tool_call", call, source="api", **keys)
    await _flush(writer)
    writer.emit(None, "tool_call.succeeded", "tool_call", {**call, "status": "succeeded"}, source="api", **keys)
    writer.emit(
        None,
        "task.step",
        "task",
        {**body, "step": 1, "summary": "listed", "tools": ["files.list"]},
        source="api",
        **keys,
    )
    await _flush(writer)
    # The end is written with the row's change, in its transaction.
    async with server.ctx.db.transaction() as s:
        await s.execute(
            update(Command)
            .where(Command.id == task.id)
            .values(status="failed", finished_at=clock.now(), error={"code": "task.step_limit", "message": "x"})
        )
        await events.append(s, None, "task.failed", "task", {**body, "error": {"code": "task.step_limit"}}, **keys)


async def _events(api, **params) -> list[dict]:
    r = await api.get("/v1/events", params={**params, "order": "asc"}, headers=CURRENT)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_run_less_events_are_numbered_by_their_task(server, api):
    task = await task_row(server, api)
    await _story(server, task)
    async with server.ctx.db.read() as s:
        rows = list(
            (await s.execute(select(RunEvent).where(RunEvent.task_id == task.id).order_by(RunEvent.seq))).scalars()
        )
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r.run_id is None and r.agent_id == task.agent_id for r in rows)
    assert [r.type for r in rows][0] == "task.started" and rows[-1].type == "task.failed"
    # Another task's events are numbered on their own.
    other = await task_row(server, api)
    async with server.ctx.db.transaction() as s:
        first = await events.append(s, None, "task.created", "task", {}, **_keys(other))
        second = await events.append(s, None, "task.started", "task", {}, **_keys(other))
    assert (first.seq, second.seq) == (1, 2)


async def test_an_event_needs_a_run_or_a_task(server):
    with pytest.raises(ValueError):
        EventWriter(server.ctx.db).emit(None, "task.step", "task", {})
    async with server.ctx.db.transaction() as s:
        with pytest.raises(ValueError):
            await events.append(s, None, "task.step", "task", {})


async def test_filters_find_a_task_without_a_browser(server, api):
    task = await task_row(server, api)
    await _story(server, task)
    by_task = await _events(api, task=str(task.id))
    assert [e["type"] for e in by_task] == [
        "task.started",
        "task.llm_call",
        "tool_call.started",
        "tool_call.succeeded",
        "task.step",
        "task.failed",
    ]
    assert [e["id"] for e in await _events(api, conversation=str(task.conversation_id))] == [e["id"] for e in by_task]
    assert [e["id"] for e in await _events(api, agent=str(task.agent_id))] == [e["id"] for e in by_task]
    # Every filter narrows: another task's events are not these.
    other = await task_row(server, api)
    async with server.ctx.db.transaction() as s:
        await events.append(s, None, "task.created", "task", {}, **_keys(other))
    assert [e["type"] for e in await _events(api, task=str(other.id))] == ["task.created"]
    assert await _events(api, agent=str(uuid.uuid4())) == []
    assert await _events(api, conversation="not-an-id") == []
    # Unfiltered, the account's list has them too; combined with the other filters.
    listed = {e["id"] for e in await _events(api, limit=100)}
    assert {e["id"] for e in by_task} <= listed
    failed = await _events(api, task=str(task.id), outcome="failed")
    assert [e["type"] for e in failed] == ["task.failed"]
    tools = await _events(api, agent=str(task.agent_id), channel="tool")
    assert [e["type"] for e in tools] == ["tool_call.started", "tool_call.succeeded"]
    assert await _events(api, task=str(task.id), run=str(uuid.uuid4())) == []


async def test_task_events_in_the_current_shape(server, api):
    task = await task_row(server, api)
    await _story(server, task)
    by_type = {e["type"]: e for e in await _events(api, task=str(task.id))}
    started = by_type["task.started"]
    assert started["category"] == "agent" and started["channel"] == "api" and started["source"] == "agent"
    assert started["outcome"] == "ok"
    assert started["actor"] == {"type": "agent", "id": str(task.agent_id), "name": None}
    assert started["target"] == {"kind": "task", "id": str(task.id)}
    assert started["taskId"] == str(task.id) and started["conversationId"] == str(task.conversation_id)
    assert started["traceId"] == task.id.hex
    assert started["runId"] is None and started["runtimeId"] is None
    assert started["spaceId"] == str(task.space_id)
    assert started["seq"] == 1
    call = by_type["tool_call.started"]
    assert (call["category"], call["channel"], call["source"]) == ("agent", "tool", "tool")
    assert call["target"] == {"kind": "tool_call", "id": call["data"]["toolCallId"]}
    assert by_type["task.failed"]["outcome"] == "failed"
    assert by_type["tool_call.succeeded"]["outcome"] == "ok"
    # Filters on the shape's words find them.
    agents = await _events(api, task=str(task.id), actorType="agent", category="agent")
    assert len(agents) == len(by_type)
    assert await _events(api, task=str(task.id), category="page") == []
    # One by id.
    got = await api.get(f"/v1/events/{started['id']}", headers=CURRENT)
    assert got.status_code == 200 and got.json() == started


async def test_task_events_stay_in_their_account_and_space(server, api):
    elsewhere = (await api.post("/v1/spaces", json={"name": "task-events-elsewhere"}, headers=CURRENT)).json()
    task = await task_row(server, api, space_id=elsewhere["id"])
    await _story(server, task)
    in_space = await api.get(
        "/v1/events", params={"task": str(task.id)}, headers={**CURRENT, "BCTRL-Space": elsewhere["id"]}
    )
    assert len(in_space.json()["data"]) == 6
    me = (await api.get("/v1/auth/whoami")).json()
    default = await api.get(
        "/v1/events", params={"task": str(task.id)}, headers={**CURRENT, "BCTRL-Space": me["defaultSpaceId"]}
    )
    assert default.json()["data"] == []
    event_id = in_space.json()["data"][0]["id"]
    async with await server.client("other") as other:
        assert (await other.get("/v1/events", params={"task": str(task.id)}, headers=CURRENT)).json()["data"] == []
        gone = await other.get(f"/v1/events/{event_id}", headers=CURRENT)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "event.not_found"
        trace = await other.get(f"/v1/traces/{task.id.hex}", headers=CURRENT)
        assert trace.status_code == 404 and trace.json()["error"]["code"] == "trace.not_found"


async def test_a_task_trace_is_its_span_tree(server, api):
    task = await task_row(server, api)
    await _story(server, task)
    r = await api.get(f"/v1/traces/{task.id.hex}", headers=CURRENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["traceId"] == task.id.hex
    spans = body["spans"]
    root = spans[0]
    assert root["parentSpanId"] is None and root["name"] == "invoke_agent task"
    assert root["status"] == "error" and root["attributes"]["error.type"] == "task.step_limit"
    assert root["attributes"]["gen_ai.agent.id"] == str(task.agent_id)
    children = spans[1:]
    assert {s["parentSpanId"] for s in children} == {root["spanId"]}
    assert sorted(s["name"] for s in children) == [
        "chat openai/gpt-test",
        "execute_tool files.list",
        "execute_tool files.list",
    ]
    kinds = sorted(s["attributes"]["bctrl.span.kind"] for s in children)
    assert kinds == ["llm", "tool", "tool"]  # the LLM call, the step, the tool call
    llm = next(s for s in children if s["attributes"]["bctrl.span.kind"] == "llm")
    assert llm["attributes"]["gen_ai.usage.input_tokens"] == 12
    tool_call = next(s for s in children if "gen_ai.tool.call.id" in s["attributes"])
    assert tool_call["status"] == "ok" and tool_call["endTime"] >= tool_call["startTime"]
    assert "bctrl.span.in_progress" not in tool_call["attributes"]
    # The same trace by the task's id as written elsewhere.
    assert (await api.get(f"/v1/traces/{task.id}", headers=CURRENT)).json()["spans"] == spans
    assert (await api.get(f"/v1/traces/{uuid.uuid4().hex}", headers=CURRENT)).status_code == 404


async def test_a_running_task_trace_has_open_spans(server, api):
    task = await task_row(server, api, status="awaiting_input")
    writer = EventWriter(server.ctx.db)
    call = {"toolCallId": str(ids.new_id()), "tool": "human.request", "callerType": "agent"}
    writer.emit(None, "tool_call.started", "tool_call", call, source="api", **_keys(task))
    writer.emit(None, "tool_call.awaiting_input", "tool_call", call, source="api", **_keys(task))
    await _flush(writer)
    spans = (await api.get(f"/v1/traces/{task.id.hex}", headers=CURRENT)).json()["spans"]
    assert len(spans) == 2
    assert all(s["attributes"].get("bctrl.span.in_progress") for s in spans)
    assert spans[1]["name"] == "execute_tool human.request"


async def test_retention_removes_old_run_less_events(server, api):
    task = await task_row(server, api)
    async with server.ctx.db.transaction() as s:
        old = await events.append(s, None, "task.created", "task", {}, **_keys(task))
        new = await events.append(s, None, "task.started", "task", {}, **_keys(task))
        old.time = clock.now() - timedelta(days=40)
    ctx = SimpleNamespace(
        db=server.ctx.db, settings=server.ctx.settings.model_copy(update={"event_retention_days": 30})
    )
    assert await runs_service.purge_old_events(ctx) >= 1
    async with server.ctx.db.read() as s:
        left = list((await s.execute(select(RunEvent.id).where(RunEvent.task_id == task.id))).scalars())
    assert left == [new.id]


async def test_a_task_on_a_browser_keeps_the_run_order(server, api):
    """A task driving a browser writes its events with the run: numbered by the run, in the run's stream
    (framed as `GET /v1/events/{id}` has them), and found by the task's filters with both ids."""
    task = await task_row(server, api)
    run = await active_run(server, api)
    writer = EventWriter(server.ctx.db)
    writer.emit(run.id, "page.load", "browser", {"url": "about:blank"}, page_id="p1")
    writer.emit(run.id, "task.step", "task", {"step": 1, "tools": []}, source="api", **_keys(task))
    # A task runner's tool executors emit with the task's category: still a tool call.
    writer.emit(run.id, "tool_call.started", "task", {"toolCallId": "c1", "tool": "x"}, source="api", **_keys(task))
    await _flush(writer)
    listed = await _events(api, task=str(task.id))
    assert [(e["type"], e["seq"], e["runId"]) for e in listed] == [
        ("task.step", 2, str(run.id)),
        ("tool_call.started", 3, str(run.id)),
    ]
    assert listed[1]["channel"] == "tool" and listed[1]["target"] == {"kind": "tool_call", "id": "c1"}
    assert listed[0]["traceId"] == task.id.hex and listed[0]["runtimeId"] == str(run.runtime_id)
    rows = await streams.read_rows(server.ctx, run.id, 0, 10)
    assert [r.seq for r in rows] == [1, 2, 3]
    frames = event_shapes.runtime_event_frames(rows, run).decode().split("\n\n")[:-1]
    for frame, row in zip(frames, rows, strict=True):
        async with server.ctx.db.read() as s:
            stored = await s.get(RunEvent, row.id)
        want = event_shapes.event_dict(stored, run.space_id, run.runtime_id)
        assert orjson.loads(frame.split("\n")[1][6:]) == {
            "type": "runtime.event",
            "id": str(row.id),
            "runId": str(run.id),
            "timestamp": want["time"],
            "event": want,
        }
    assert orjson.loads(frames[1].split("\n")[1][6:])["event"]["taskId"] == str(task.id)


async def _take(agen, count: int) -> list:
    found: list = []

    async def take():
        async for item in agen:
            if isinstance(item, list):  # a page of events (else a heartbeat)
                found.extend(item)
                if len(found) >= count:
                    return

    await asyncio.wait_for(take(), 30)
    return found


async def test_the_stream_follows_a_task_without_a_browser_and_resumes(server, api):
    """`/v1/events/stream`'s service: a task's run-less events as they are committed, in the task's order,
    none from before the stream; narrowed by task, conversation and agent; resumed after one of them, the
    task continues right after it; the SSE frames are the listed events."""
    task = await task_row(server, api)
    async with server.ctx.db.transaction() as s:
        await events.append(s, None, "task.created", "task", {}, **_keys(task))  # before the stream
    me = (await api.get("/v1/auth/whoami")).json()
    scope = events_query.EventScope(account_id=uuid.UUID(me["organizationId"]))
    by_task = event_shapes.event_query(task=str(task.id))
    agen = events_query.follow(server.ctx, scope, by_task)
    reader = asyncio.ensure_future(_take(agen, 6))
    await asyncio.sleep(0.3)  # the stream is open
    other = await task_row(server, api)
    async with server.ctx.db.transaction() as s:
        await events.append(s, None, "task.created", "task", {}, **_keys(other))  # another task's
    await _story(server, task)
    got = await reader
    await agen.aclose()
    assert [(f.event.type, f.event.seq) for f in got] == [
        ("task.started", 2),
        ("task.llm_call", 3),
        ("tool_call.started", 4),
        ("tool_call.succeeded", 5),
        ("task.step", 6),
        ("task.failed", 7),
    ]
    assert {(f.space_id, f.runtime_id) for f in got} == {(task.space_id, None)}
    # The frames are the events as `GET /v1/events/{id}` has them.
    for frame, item in zip(event_shapes.event_frames(got).decode().split("\n\n")[:-1], got, strict=True):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        async with server.ctx.db.read() as s:
            stored = await s.get(RunEvent, item.event.id)
        assert lines["id"] == str(item.event.id)
        assert orjson.loads(lines["data"]) == event_shapes.event_dict(stored, task.space_id, None)

    # Resumed after the third event (by its id, as Last-Event-ID does): the rest, once each.
    after = await events_query.resume_point(server.ctx, scope, str(got[2].event.id))
    resumed = events_query.follow(server.ctx, scope, by_task, after=after)
    again = await _take(resumed, 3)
    await resumed.aclose()
    assert [f.event.seq for f in again] == [5, 6, 7]

    # The conversation's and the agent's streams have them; a browser's scope never does.
    for query in (
        event_shapes.event_query(conversation=str(task.conversation_id), time_from=got[0].event.time),
        event_shapes.event_query(agent=str(task.agent_id), time_from=got[0].event.time),
    ):
        agen = events_query.follow(server.ctx, scope, query)
        assert [f.event.id for f in await _take(agen, 6)] == [f.event.id for f in got]
        await agen.aclose()
    browser = events_query.EventScope(account_id=scope.account_id, runtime_id=uuid.uuid4())
    with pytest.raises(Exception) as outside:
        await events_query.resume_point(server.ctx, browser, str(got[0].event.id))
    assert getattr(outside.value, "status", None) == 400
    # Another account's stream cannot resume after it.
    stranger = events_query.EventScope(account_id=uuid.uuid4())
    with pytest.raises(Exception) as elsewhere:
        await events_query.resume_point(server.ctx, stranger, str(got[0].event.id))
    assert getattr(elsewhere.value, "status", None) == 400

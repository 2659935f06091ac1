"""The tool call record's service in process, over both backends: call_tool with a task's env (events
through env.emit, the input request hook, cancellation by the caller), and recovery of calls whose
process died."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import update

from app.core import clock
from app.spaces.models import Space
from app.toolcalls import executors, service
from app.toolcalls.env import ToolEnv
from app.toolcalls.models import ToolCall
from app.tools import service as tools
from tests.support import eventually


async def account_and_space(server, api):
    default = (await api.get("/v1/spaces/default", headers={"BCTRL-Version": "2026-10-03"})).json()
    async with server.ctx.db.read() as s:
        space = await s.get(Space, uuid.UUID(default["id"]))
    return space.account_id, space.id


async def test_call_tool_for_a_task_reports_and_suspends(server, api):
    account_id, space_id = await account_and_space(server, api)
    events: list[tuple[str, dict]] = []
    requests: list[dict | None] = []

    async def on_input(request):
        requests.append(request)

    env = ToolEnv(
        account_id=account_id,
        space_id=space_id,
        emit=lambda t, d: events.append((t, d)),
        on_input_request=on_input,
        actor={"kind": "task", "taskId": "t"},
    )
    tool = await tools.resolve(server.ctx, account_id, "human.request")
    running = asyncio.create_task(
        executors.call_tool(server.ctx, env, tool, {"prompt": "Which plan?", "schema": {"enum": ["a", "b"]}}, "agent")
    )
    await eventually(lambda: requests)
    call_id = uuid.UUID(requests[0]["id"])
    row = await service.load(server.ctx, call_id)
    assert row.status == "awaiting_input" and row.caller_type == "agent"
    await service.respond(server.ctx, row, "b")
    outcome = await asyncio.wait_for(running, 10)
    assert outcome.ok and outcome.result == {"value": "b"} and outcome.call_id == call_id
    assert requests[-1] is None  # told when the call stopped waiting
    assert [t for t, _ in events] == [
        "tool_call.started",
        "tool_call.awaiting_input",
        "tool_call.input_received",
        "tool_call.succeeded",
    ]

    # A tool failure is an outcome, not an exception.
    failed = await executors.call_tool(
        server.ctx, env, await tools.resolve(server.ctx, account_id, "files.read_text"), {"path": "none"}, "agent"
    )
    assert not failed.ok and failed.error["code"] == "storage_file.not_found"

    # The caller's cancellation (its task was cancelled) ends the call canceled.
    stop = False
    env.cancelled = lambda: stop
    waiting = asyncio.create_task(executors.call_tool(server.ctx, env, tool, {"prompt": "Still there?"}, "agent"))
    await eventually(lambda: len(requests) == 3)
    stop = True
    cancelled = await asyncio.wait_for(waiting, 10)
    assert cancelled.status == "canceled" and not cancelled.ok
    assert (await service.load(server.ctx, cancelled.call_id)).status == "canceled"


async def test_recover_ends_calls_whose_process_died(server, api):
    account_id, space_id = await account_and_space(server, api)
    row = await service.record(
        server.ctx,
        account_id=account_id,
        space_id=space_id,
        tool_name="files.list",
        input={},
        caller_type="api",
        status="running",
    )
    fresh = await service.record(
        server.ctx,
        account_id=account_id,
        space_id=space_id,
        tool_name="files.list",
        input={},
        caller_type="api",
        status="running",
    )
    async with server.ctx.db.transaction() as s:
        await s.execute(
            update(ToolCall).where(ToolCall.id == row.id).values(heartbeat_at=clock.now() - timedelta(minutes=5))
        )
    # The shared server's sweep runs the same recovery every second and may get there first: either
    # way the call whose process died is failed, and the fresh one is left alone.
    await service.recover(server.ctx)
    dead = await service.load(server.ctx, row.id)
    assert dead.status == "failed" and dead.error["code"] == "tool.outcome_unknown" and dead.finished_at
    assert (await service.load(server.ctx, fresh.id)).status == "running"
    await service.finish(server.ctx, fresh.id, "canceled")

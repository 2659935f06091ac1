"""A run row and a task row for tests that write events straight through the writer (no browser or
agent behind them)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.core import clock, ids
from app.runs.command_models import Command
from app.runs.models import Run


async def active_run(server, api) -> Run:
    """An active browser run in the caller's default space, created directly in the database."""
    me = (await api.get("/v1/auth/whoami")).json()
    now = clock.now()
    run = Run(
        id=ids.new_id(),
        account_id=uuid.UUID(me["organizationId"]),
        space_id=uuid.UUID(me["defaultSpaceId"]),
        runtime_id=ids.new_id(),
        runtime_type="browser",
        status="active",
        recording=False,
        failure=None,
        event_seq=0,
        created_at=now,
        started_at=now,
    )
    async with server.ctx.db.transaction() as s:
        s.add(run)
    return run


async def task_row(server, api, *, status: str = "running", space_id: str | None = None) -> Command:
    """A task row (a durable command of provider `agent`) without a run, as the task service makes one."""
    me = (await api.get("/v1/auth/whoami")).json()
    now = clock.now()
    task_id = ids.new_id()
    row = Command(
        id=task_id,
        account_id=uuid.UUID(me["organizationId"]),
        space_id=uuid.UUID(space_id or me["defaultSpaceId"]),
        run_id=None,
        runtime_id=None,
        sequence_no=0,
        entry_call="task",
        execution_mode="durable",
        status=status,
        provider="agent",
        method="task",
        request={"model": "openai/gpt-test"},
        created_at=now - timedelta(seconds=5),
        started_at=now - timedelta(seconds=4),
        agent_id=ids.new_id(),
        conversation_id=ids.new_id(),
        trace_id=task_id.hex,
        # A live worker's beat, so the server's recovery sweep leaves this running row alone.
        worker="test",
        heartbeat_at=now + timedelta(hours=1),
    )
    async with server.ctx.db.transaction() as s:
        s.add(row)
    return row

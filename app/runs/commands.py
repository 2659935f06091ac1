"""Platform command records: what was asked of the platform for a run (start, stop, lease, revoke;
invocations later), with request, result and error. Written in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, ids
from app.core.db import Database
from app.core.paging import PageParams, split_page
from app.runs.command_models import Command
from app.runs.models import Run


async def record(
    session: AsyncSession,
    run_id: uuid.UUID,
    entry_call: str,
    *,
    request: dict | None = None,
    result: dict | None = None,
    error: dict | None = None,
    started_at: datetime | None = None,
    status: str | None = None,
) -> Command:
    run = (
        await session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(command_seq=Run.command_seq + 1)
            .returning(Run.command_seq, Run.account_id, Run.space_id, Run.runtime_id)
        )
    ).one()
    now = clock.now()
    command = Command(
        id=ids.new_id(),
        account_id=run.account_id,
        space_id=run.space_id,
        run_id=run_id,
        runtime_id=run.runtime_id,
        sequence_no=run.command_seq,
        entry_call=entry_call,
        execution_mode="inline",
        status=status or ("failed" if error else "succeeded"),
        request=request,
        result=result,
        error=error,
        created_at=started_at or now,
        started_at=started_at or now,
        finished_at=now,
    )
    session.add(command)
    return command


async def list_commands(
    db: Database, run_id: uuid.UUID, page: PageParams, *, statuses: list[str] | None, descending: bool
) -> tuple[list[Command], str | None]:
    stmt = select(Command).where(Command.run_id == run_id)
    if statuses:
        stmt = stmt.where(Command.status.in_(statuses))
    if isinstance(page.after, int):
        stmt = stmt.where(Command.sequence_no < page.after if descending else Command.sequence_no > page.after)
    order = Command.sequence_no.desc() if descending else Command.sequence_no
    async with db.read() as s:
        rows = list((await s.execute(stmt.order_by(order).limit(page.limit + 1))).scalars())
    return split_page(rows, page, lambda c: c.sequence_no)


def as_wire(c: Command, include: set[str]) -> dict[str, Any]:
    duration = round((c.finished_at - c.started_at).total_seconds() * 1000) if c.finished_at and c.started_at else None
    wire = {
        "id": str(c.id),
        "runId": str(c.run_id),
        "runtimeId": str(c.runtime_id),
        "spaceId": str(c.space_id),
        "runtimeKind": "browser",
        "sequenceNo": c.sequence_no,
        "entryCall": c.entry_call,
        "executionMode": c.execution_mode,
        "status": c.status,
        "stepCount": c.step_count or 0,
        "artifactCount": 0,
        "connector": c.provider,
        "correlationId": None,
        "progress": c.progress,
        "metadata": None,
        "createdAt": clock.iso(c.created_at),
        "startedAt": clock.iso(c.started_at),
        "finishedAt": clock.iso(c.finished_at),
        "lastHeartbeatAt": clock.iso(c.heartbeat_at),
        "cancelRequestedAt": clock.iso(c.cancel_requested_at),
        "durationMs": duration,
    }
    for heavy in ("request", "result", "error"):
        if heavy in include:
            wire[heavy] = getattr(c, heavy)
    return wire

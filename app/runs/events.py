"""Appending run events: each gets the next sequence number of its run, in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, ids
from app.core.db import TOUCHED_RUNS
from app.runs.models import Run, RunEvent, RunStatus

CONTROL_PLANE = "control-plane"


async def append(
    session: AsyncSession,
    run_id: uuid.UUID,
    type: str,
    category: str,
    data: dict[str, Any] | None = None,
    *,
    source: str = CONTROL_PLANE,
    connection_id: uuid.UUID | None = None,
    page_id: str | None = None,
) -> RunEvent:
    seq = (
        await session.execute(
            update(Run).where(Run.id == run_id).values(event_seq=Run.event_seq + 1).returning(Run.event_seq)
        )
    ).scalar_one()
    event = RunEvent(
        id=ids.new_id(),
        run_id=run_id,
        seq=seq,
        time=clock.now(),
        type=type,
        category=category,
        source=source,
        connection_id=connection_id,
        page_id=page_id,
        data=data or {},
    )
    session.add(event)
    session.info.setdefault(TOUCHED_RUNS, set()).add(run_id)
    return event


async def attached_clients(session: AsyncSession, run_id: uuid.UUID, connection_id: uuid.UUID | None = None) -> int:
    """CDP sockets attached now (to one connection, or to any of the run's), from the run's
    connection.attached / connection.detached events, so every server process sees the same count."""
    stmt = select(
        func.sum(
            case((RunEvent.type == "connection.attached", 1), (RunEvent.type == "connection.detached", -1), else_=0)
        )
    ).where(RunEvent.run_id == run_id, RunEvent.category == "connection")
    if connection_id is not None:
        stmt = stmt.where(RunEvent.connection_id == connection_id)
    return max(0, (await session.execute(stmt)).scalar() or 0)


def _socket_balance():
    return func.sum(
        case((RunEvent.type == "connection.attached", 1), (RunEvent.type == "connection.detached", -1), else_=0)
    )


async def open_sockets(
    session: AsyncSession, run_id: uuid.UUID | None = None, connection_id: uuid.UUID | None = None
) -> list[tuple[uuid.UUID, uuid.UUID, str, int]]:
    """Sockets attached now on active runs, by the server process they are attached through:
    (run id, connection id, server instance, how many)."""
    instance = RunEvent.data["serverInstance"].as_string()
    stmt = (
        select(RunEvent.run_id, RunEvent.connection_id, instance, _socket_balance())
        .join(Run, Run.id == RunEvent.run_id)
        .where(
            Run.status == RunStatus.ACTIVE,
            RunEvent.category == "connection",
            RunEvent.type.in_(("connection.attached", "connection.detached")),
            instance.is_not(None),
        )
        .group_by(RunEvent.run_id, RunEvent.connection_id, instance)
    )
    if run_id is not None:
        stmt = stmt.where(RunEvent.run_id == run_id)
    if connection_id is not None:
        stmt = stmt.where(RunEvent.connection_id == connection_id)
    return [(r, c, i, n) for r, c, i, n in (await session.execute(stmt)).all() if n and n > 0]

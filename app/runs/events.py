"""Appending events in the caller's transaction: an event of a run gets the next sequence number of its
run; an event of a task without a run (`run_id` None, `task_id` given) the next of the task's run-less
events (`task_seqs`). An event of a task on a run carries both ids and is numbered by the run, so a run's
stream sees it in its order."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, ids
from app.core.db import TOUCHED_RUNS
from app.outbox.models import OutboxRow, ordered_xact
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent, RunStatus

CONTROL_PLANE = "control-plane"
# session.info key: the last sequence number allocated to each task's run-less events in the transaction.
_TASK_SEQS = "task_event_seqs"


@dataclass
class TaskNumbers:
    last: int  # the last sequence number allocated to the task's run-less events
    xact: int  # their outbox rows' `xact` (app/outbox/models.py `ordered_xact`)
    account_id: uuid.UUID


async def task_seqs(
    session: AsyncSession, task_ids: Iterable[uuid.UUID], count: Counter | dict
) -> dict[uuid.UUID, TaskNumbers]:
    """Allocate `count[task]` sequence numbers to each task's run-less events (a task whose row is gone
    gets none). The task's `commands` row is locked (in id order) for the rest of the transaction, so no
    other writer numbers its events meanwhile."""
    allocated: dict[uuid.UUID, TaskNumbers] = session.info.setdefault(_TASK_SEQS, {})
    numbered: dict[uuid.UUID, TaskNumbers] = {}
    for task_id in sorted(set(task_ids)):
        if task_id not in allocated:
            # Updating the row locks it, and orders its events' outbox rows (app/outbox/models.py).
            found = (
                await session.execute(
                    update(Command)
                    .where(Command.id == task_id)
                    .values(outbox_xact=ordered_xact(Command.outbox_xact))
                    .returning(Command.outbox_xact, Command.account_id)
                )
            ).one_or_none()
            if found is None:
                continue
            top = await session.execute(
                select(func.max(RunEvent.seq)).where(RunEvent.task_id == task_id, RunEvent.run_id.is_(None))
            )
            allocated[task_id] = TaskNumbers(top.scalar() or 0, *found)
        allocated[task_id].last += count[task_id]
        numbered[task_id] = replace(allocated[task_id])
    return numbered


def category_of(type: str, category: str) -> str:
    """A `tool_call.*` event is of category `tool_call` whoever writes it (a task runner hands its tool
    executors an emitter of its own category)."""
    return "tool_call" if category == "task" and type.startswith("tool_call.") else category


def _owner_required() -> ValueError:
    return ValueError("an event needs a run_id or a task_id")


async def append(
    session: AsyncSession,
    run_id: uuid.UUID | None,
    type: str,
    category: str,
    data: dict[str, Any] | None = None,
    *,
    source: str = CONTROL_PLANE,
    connection_id: uuid.UUID | None = None,
    page_id: str | None = None,
    task_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
) -> RunEvent:
    """Add an event of the run (or, with `run_id` None, of the task `task_id`); a task that no longer
    exists is `LookupError`."""
    if run_id is not None:
        seq, account_id, xact = (
            await session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(event_seq=Run.event_seq + 1, outbox_xact=ordered_xact(Run.outbox_xact))
                .returning(Run.event_seq, Run.account_id, Run.outbox_xact)
            )
        ).one()
    elif task_id is None:
        raise _owner_required()
    else:
        numbered = (await task_seqs(session, [task_id], {task_id: 1})).get(task_id)
        if numbered is None:
            raise LookupError(f"task {task_id} not found")
        seq, xact, account_id = numbered.last, numbered.xact, numbered.account_id
    event = RunEvent(
        id=ids.new_id(),
        run_id=run_id,
        task_id=task_id,
        conversation_id=conversation_id,
        agent_id=agent_id,
        seq=seq,
        time=clock.now(),
        type=type,
        category=category_of(type, category),
        source=source,
        connection_id=connection_id,
        page_id=page_id,
        data=data or {},
    )
    session.add(event)
    # Its outbox row, in the same transaction (webhooks and drains read the outbox).
    session.add(
        OutboxRow(
            xact=xact,
            event_id=event.id,
            account_id=account_id,
            category=event.category,
            type=type,
            created_at=event.time,
        )
    )
    # Readers are woken after the commit: a run's, and the account-wide stream (which also follows a
    # task's run-less events; it wakes on any id).
    session.info.setdefault(TOUCHED_RUNS, set()).add(run_id if run_id is not None else task_id)
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


async def still_attached(session: AsyncSession, run_id: uuid.UUID, connection_id: uuid.UUID, instance: str) -> int:
    """Sockets of this connection attached through `instance` and not yet detached, the run row locked
    first: whoever writes a detach (the socket's own process when it closes, or the sweep of another
    that judged that process dead) counts again under the lock, so each detach is written once."""
    await session.execute(select(Run.id).where(Run.id == run_id).with_for_update())
    stmt = select(_socket_balance()).where(
        RunEvent.run_id == run_id,
        RunEvent.category == "connection",
        RunEvent.connection_id == connection_id,
        RunEvent.data["serverInstance"].as_string() == instance,
    )
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

"""Reading the outbox in commit-safe order, and pruning what every consumer has passed.

A position is taken when a row is inserted, not when its transaction commits: on PostgreSQL, reading
"position > n" could pass over a row that commits later with a lower position. So consumers read in
(xact, position) order, and only rows whose transaction is older than every transaction still in flight
(`xact < pg_snapshot_xmin(pg_current_snapshot())`): no row can ever appear behind such a cursor. On
SQLite `xact` is 0 and writers take turns, so this is position order. A long transaction anywhere in the
database holds readers back until it ends (nothing is skipped, it is only later).

Consumers (webhooks, drains) keep their cursors in their own tables and register a function giving their
lowest one; `prune` (an upkeep job) deletes rows every consumer has passed, and rows older than
`outbox_retention_seconds` whatever the consumers say."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import BigInteger, delete, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.context import AppContext
from app.outbox.models import OutboxRow
from app.runs.models import RunEvent

log = structlog.get_logger(__name__)

# The oldest transaction still in flight, as seen by the statement (PostgreSQL).
_XMIN = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", BigInteger)


@dataclass(frozen=True, order=True)
class Cursor:
    """A place in the outbox: past every row at or before (xact, position). `Cursor()` is the beginning."""

    xact: int = 0
    position: int = 0


@dataclass(frozen=True)
class OutboxItem:
    cursor: Cursor
    event: RunEvent
    account_id: uuid.UUID


@dataclass(frozen=True)
class OutboxPage:
    items: list[OutboxItem]  # the rows that matched, in order
    cursor: Cursor  # past every row scanned (matched or not): where the next read starts


Lowest = Callable[[AppContext], Awaitable[Cursor | None]]
_consumers: dict[str, Lowest] = {}


def register_consumer(name: str, lowest: Lowest) -> None:
    """`lowest(ctx)`: the lowest cursor the consumer still needs (None: it needs nothing kept)."""
    _consumers[name] = lowest


def _committed(s: AsyncSession):
    return OutboxRow.xact < _XMIN if s.get_bind().dialect.name == "postgresql" else True


async def read_in(
    s: AsyncSession,
    after: Cursor,
    limit: int = 500,
    *,
    account_id: uuid.UUID | None = None,
    categories: Collection[str] | None = None,
    types: Collection[str] | None = None,
) -> OutboxPage:
    """`read` in the caller's transaction (a consumer that moves its cursor in the same one)."""
    rows = (
        await s.execute(
            select(OutboxRow.xact, OutboxRow.position, OutboxRow.event_id, OutboxRow.account_id)
            .where(
                tuple_(OutboxRow.xact, OutboxRow.position) > tuple_(after.xact, after.position),
                _committed(s),
                *([OutboxRow.account_id == account_id] if account_id is not None else []),
                *([OutboxRow.category.in_(list(categories))] if categories is not None else []),
                *([OutboxRow.type.in_(list(types))] if types is not None else []),
            )
            .order_by(OutboxRow.xact, OutboxRow.position)
            .limit(limit)
        )
    ).all()
    if not rows:
        return OutboxPage([], after)
    events = {
        e.id: e
        for e in (await s.execute(select(RunEvent).where(RunEvent.id.in_([r.event_id for r in rows])))).scalars()
    }
    items = [
        OutboxItem(Cursor(r.xact, r.position), events[r.event_id], r.account_id) for r in rows if r.event_id in events
    ]
    # With filters, the scan stops at `limit` matching rows, so the last one read is where to continue.
    return OutboxPage(items, Cursor(rows[-1].xact, rows[-1].position))


async def read(
    ctx: AppContext,
    after: Cursor,
    limit: int = 500,
    *,
    account_id: uuid.UUID | None = None,
    categories: Collection[str] | None = None,
    types: Collection[str] | None = None,
) -> OutboxPage:
    """Up to `limit` committed rows after `after` that match the filters, each with its event, in order;
    the page's cursor is where to continue (past the last row read)."""
    async with ctx.db.read() as s:
        return await read_in(s, after, limit, account_id=account_id, categories=categories, types=types)


async def head_in(s: AsyncSession) -> Cursor:
    last = (
        await s.execute(
            select(OutboxRow.xact, OutboxRow.position)
            .where(_committed(s))
            .order_by(OutboxRow.xact.desc(), OutboxRow.position.desc())
            .limit(1)
        )
    ).first()
    return Cursor(last.xact, last.position) if last else Cursor()


async def head(ctx: AppContext) -> Cursor:
    """The cursor of now: a consumer starting here reads only rows committed from now on."""
    async with ctx.db.read() as s:
        return await head_in(s)


async def prune(ctx: AppContext) -> int:
    """Delete the rows every registered consumer has passed, and those older than the retention."""
    needs = [c for c in [await lowest(ctx) for lowest in list(_consumers.values())] if c is not None]
    async with ctx.db.transaction() as s:
        floor = min(needs) if needs else await head_in(s)
        cutoff = clock.now() - timedelta(seconds=ctx.settings.outbox_retention_seconds)
        passed = await s.execute(
            delete(OutboxRow).where(tuple_(OutboxRow.xact, OutboxRow.position) <= tuple_(floor.xact, floor.position))
        )
        old = await s.execute(delete(OutboxRow).where(OutboxRow.created_at < cutoff))
    pruned = passed.rowcount + old.rowcount
    if pruned:
        log.info("outbox_pruned", rows=pruned)
    return pruned

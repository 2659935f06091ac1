"""Following a run's events as they are written: long-poll wait and SSE streams.

Readers always read from the database from their cursor (the last sequence number they saw), so
resuming is gap- and repeat-free; the notifier only tells them when to look again. A slow reader
costs one page of events in memory, never more: the stream pulls the next page only after the
previous one was sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import structlog
from sqlalchemy import func, select

from app.core import clock
from app.core.context import AppContext
from app.core.errors import RETRY_AFTER_SECONDS, backend_unavailable
from app.core.paging import decode_cursor, encode_cursor
from app.runs.models import Run, RunEvent, RunStatus
from app.runs.schemas import EventOut

log = structlog.get_logger(__name__)

PAGE = 500
# After a run ends, events still being written (a socket's detach, a last batch) get this long.
END_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class EventFilter:
    types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    connection_id: uuid.UUID | None = None
    page_id: str | None = None

    def apply(self, stmt):
        if self.types:
            stmt = stmt.where(RunEvent.type.in_(self.types))
        if self.categories:
            stmt = stmt.where(RunEvent.category.in_(self.categories))
        if self.connection_id is not None:
            stmt = stmt.where(RunEvent.connection_id == self.connection_id)
        if self.page_id is not None:
            stmt = stmt.where(RunEvent.page_id == self.page_id)
        return stmt


def seq_of(cursor: str | None) -> int | None:
    if not cursor:
        return None
    value = decode_cursor(cursor)
    if not isinstance(value, int):
        from app.core.errors import InvalidRequest

        raise InvalidRequest(
            "cursor is not an event cursor",
            details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
        )
    return value


async def read_after(
    ctx: AppContext, run_id: uuid.UUID, after: int, flt: EventFilter, limit: int = PAGE, upto: int | None = None
) -> list[RunEvent]:
    stmt = flt.apply(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after))
    if upto is not None:
        stmt = stmt.where(RunEvent.seq <= upto)
    async with ctx.db.read() as s:
        return list((await s.execute(stmt.order_by(RunEvent.seq).limit(limit))).scalars())


async def _run(ctx: AppContext, run_id: uuid.UUID) -> Run:
    async with ctx.db.read() as s:
        return await s.get(Run, run_id, populate_existing=True)


async def wait_next(
    ctx: AppContext, run: Run, flt: EventFilter, after: int | None, timeout: float
) -> tuple[RunEvent | None, int]:
    """The first matching event after `after` (default: after the newest one now), or None at timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    with ctx.notifier.subscribe(run.id) as wakeup:
        if after is None:
            after = (await _run(ctx, run.id)).event_seq
        while True:
            head = (await _run(ctx, run.id)).event_seq
            rows = await read_after(ctx, run.id, after, flt, limit=1, upto=head)
            if rows:
                return rows[0], rows[0].seq
            after = head  # nothing up to the head matches: never scan those rows again
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None, after
            await wakeup.wait(min(remaining, 1.0))


def _frame(event: str, data: dict, id_: str | None = None) -> dict:
    frame = {"event": event, "data": orjson.dumps(data).decode()}
    if id_ is not None:
        frame["id"] = id_
    return frame


async def follow(ctx: AppContext, run: Run, flt: EventFilter, after: int) -> AsyncIterator[dict]:
    """SSE frames: `run.event` (id = cursor), `heartbeat` when idle, and a final `run.ended`, or a final
    `error` {code, message, retryAfter} when the stream cannot go on (the database went away): a client
    then knows why it ended and resumes from its last `run.event` id after `retry` milliseconds."""
    try:
        async for frame in _follow(ctx, run, flt, after):
            yield frame
    except Exception as exc:
        unavailable = backend_unavailable(exc)
        if unavailable is None:
            log.exception("stream_failed", run_id=str(run.id))
            code, message, retry_after = "server.error", "Internal server error", None
        else:
            log.warning("stream_backend_unavailable", run_id=str(run.id), code=unavailable.code)
            code, message, retry_after = unavailable.code, unavailable.message, RETRY_AFTER_SECONDS
        frame = _frame("error", {"code": code, "message": message, "retryAfter": retry_after})
        frame["retry"] = (retry_after or RETRY_AFTER_SECONDS) * 1000
        yield frame


async def _follow(ctx: AppContext, run: Run, flt: EventFilter, after: int) -> AsyncIterator[dict]:
    """The frames of `follow` until the run ends.

    The run's head sequence number is read before the events, so when nothing up to the head matches
    the filter the cursor moves to the head: a narrow filter does not rescan a busy run on every wake.
    """
    loop = asyncio.get_running_loop()
    last_beat = loop.time()
    quiet_since: float | None = None
    with ctx.notifier.subscribe(run.id) as wakeup:
        while True:
            current = await _run(ctx, run.id)
            head = current.event_seq if current else after
            rows = await read_after(ctx, run.id, after, flt, upto=head)
            for row in rows:
                yield _frame("run.event", EventOut.of(row).model_dump(mode="json"), encode_cursor(row.seq))
            if rows:
                after = rows[-1].seq
                last_beat, quiet_since = loop.time(), None
                if len(rows) == PAGE:
                    continue
            after = max(after, head)
            if current is None or current.status != RunStatus.ACTIVE:
                # Events may still land after the run ends (a socket's detach): end after a quiet second.
                if quiet_since is None or rows:
                    quiet_since = loop.time()
                elif loop.time() - quiet_since >= END_GRACE_SECONDS:
                    yield _frame(
                        "run.ended",
                        {
                            "runId": str(run.id),
                            "status": current.status if current else "failed",
                            "finishedAt": clock.iso(current.finished_at) if current else None,
                            "failure": current.failure if current else None,
                        },
                    )
                    return
                await wakeup.wait(END_GRACE_SECONDS / 4)
                continue
            heartbeat = ctx.settings.sse_heartbeat_seconds
            if loop.time() - last_beat >= heartbeat:
                yield _frame("heartbeat", {"time": clock.iso(clock.now())})
                last_beat = loop.time()
            await wakeup.wait(max(0.01, min(1.0, heartbeat - (loop.time() - last_beat))))


# --- typed updates of one run (the current generation's run stream builds its frames from these) ---


@dataclass(frozen=True)
class Beat:
    """Nothing new for a while: a stream sends a keep-alive."""


@dataclass(frozen=True)
class Ended:
    run: Run | None


async def _run_of(ctx: AppContext, run_id: uuid.UUID) -> Run | None:
    async with ctx.db.read() as s:
        return await s.get(Run, run_id, populate_existing=True)


# A typed run stream carries every event of the run, a page per query and per write to the client: a
# larger page (2,000 was tried) sends its first event later and did not lower the p99 (bench/events.py).
ROWS_PAGE = PAGE
# While a stream catches up page by page it reads the run (its head, status and controller) again at
# least this often; otherwise once per wake-up, not once per page.
RECHECK_SECONDS = 1.0

_COLUMNS = tuple(RunEvent.__table__.c.keys())
# PostgreSQL: the page in one statement outside a transaction, the driver's values as they come (asyncpg
# decodes the JSONB with the engine's deserializer; timestamps are UTC-aware): no BEGIN/COMMIT round trips
# and no per-value result processing, a third of a stream's time per event at 20,000 events/s.
_PG_PAGE = (
    f"SELECT {', '.join(_COLUMNS)} FROM {RunEvent.__tablename__}"
    " WHERE run_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
)


async def read_rows(ctx: AppContext, run_id: uuid.UUID, after: int, upto: int, limit: int = ROWS_PAGE) -> list:
    """The run's events after `after` up to `upto` as plain rows (the columns of `RunEvent`, by attribute),
    without building ORM objects: a stream of a busy run reads thousands a second. Committed rows up to
    `upto` (a head read before) never change, so one statement needs no transaction around it."""
    if ctx.db.is_postgres:
        async with ctx.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return list((await conn.exec_driver_sql(_PG_PAGE, (run_id, after, upto, limit))).all())
    stmt = (
        select(*RunEvent.__table__.c)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after, RunEvent.seq <= upto)
        .order_by(RunEvent.seq)
        .limit(limit)
    )
    async with ctx.db.read() as s:
        return list((await s.execute(stmt)).all())


async def updates(ctx: AppContext, run: Run, after: int) -> AsyncIterator[list | Ended | Beat]:
    """The run's events after sequence number `after`, in order, a page (a list of rows with the columns
    of `RunEvent`) at a time (changes of controller among them: `control.changed`); a `Beat` when idle for the heartbeat interval; and a final `Ended` once the run has ended and a quiet
    second has passed (events still land after the end: a socket's detach)."""
    loop = asyncio.get_running_loop()
    last_beat = loop.time()
    quiet_since: float | None = None
    with ctx.notifier.subscribe(run.id) as wakeup:
        while True:
            current = await _run_of(ctx, run.id)
            checked = loop.time()
            head = current.event_seq if current else after
            # Up to the head just read, page after page (the run is read again after RECHECK_SECONDS).
            rows: list = []
            while head > after:
                rows = await read_rows(ctx, run.id, after, head)
                if not rows:
                    break
                yield rows
                after = rows[-1].seq
                last_beat, quiet_since = loop.time(), None
                if len(rows) < ROWS_PAGE or loop.time() - checked >= RECHECK_SECONDS:
                    break
            if len(rows) == ROWS_PAGE and after < head:
                continue
            after = max(after, head)
            if current is None or current.status != RunStatus.ACTIVE:
                if quiet_since is None or rows:
                    quiet_since = loop.time()
                elif loop.time() - quiet_since >= END_GRACE_SECONDS:
                    yield Ended(current)
                    return
                await wakeup.wait(END_GRACE_SECONDS / 4)
                continue
            heartbeat = ctx.settings.sse_heartbeat_seconds
            if loop.time() - last_beat >= heartbeat:
                yield Beat()
                last_beat = loop.time()
            await wakeup.wait(max(0.01, min(1.0, heartbeat - (loop.time() - last_beat))))


async def pages_opened(ctx: AppContext, run_id: uuid.UUID) -> list[str]:
    """The ids of the pages the run's browser opened, in the order they were opened: by each page's first
    `page.created` event (an observer that starts on a browser, after a takeover or a restart, announces
    every page already open again, in no useful order)."""
    first = func.min(RunEvent.seq)
    stmt = (
        select(RunEvent.page_id)
        .where(RunEvent.run_id == run_id, RunEvent.type == "page.created", RunEvent.page_id.is_not(None))
        .group_by(RunEvent.page_id)
        .order_by(first)
    )
    async with ctx.db.read() as s:
        return list((await s.execute(stmt)).scalars())

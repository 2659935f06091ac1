"""Events across runs: every event of an account (or of one space, browser or run) read in one place,
listed newest or oldest first, and followed as they are committed.

Events are the run events the runs already record (`run_events`); a run names the account, space and
runtime they belong to. Lists are ordered by (time, id). A followed stream reads each run's events by
its sequence number, which is that run's commit order (a run's sequence is allocated under its row
lock, so no event of a run commits before a smaller number of it), so a stream never skips an event of
a run it follows. Across runs there is no common commit order to resume from: a stream resumed after an
event starts that event's run just after it, and every other run at `REPLAY_SECONDS` before the event's
time, so it may repeat events of other runs from those seconds (their `seq` tells them apart), but skips
none that were committed late by the batching writer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, tuple_

from app.core import clock
from app.core.context import AppContext
from app.core.errors import InvalidRequest
from app.core.ids import parse_uuid
from app.core.paging import PageParams, encode_cursor
from app.runs.models import Run, RunEvent, RunStatus
from app.runs.streams import Beat

PAGE = 500
# A resumed stream re-reads other runs' events from this long before the resume point: the batching
# writer commits an event up to a few hundred milliseconds after its time (longer when the database was
# away; then the stream may skip what was that late).
REPLAY_SECONDS = 2.0
# After a run ends, events may still be written for it (a socket's detach): runs that ended this long
# ago are still looked at by a stream.
ENDED_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class EventScope:
    """Whose events: an account's, narrowed to a space, a runtime's runs, or one run."""

    account_id: uuid.UUID
    space_id: uuid.UUID | None = None
    runtime_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None

    def runs(self, stmt):
        stmt = stmt.where(Run.account_id == self.account_id)
        if self.space_id is not None:
            stmt = stmt.where(Run.space_id == self.space_id)
        if self.runtime_id is not None:
            stmt = stmt.where(Run.runtime_id == self.runtime_id)
        if self.run_id is not None:
            stmt = stmt.where(Run.id == self.run_id)
        return stmt


@dataclass(frozen=True)
class EventQuery:
    """Which events, in our words. `categories` None means any; an empty tuple means none (a filter that
    names nothing this server records). `actor` is the connection, invocation or viewer that acted."""

    categories: tuple[str, ...] | None = None
    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    only_types: tuple[str, ...] | None = None
    actor: str | None = None
    invocation_id: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    nothing: bool = False

    @property
    def empty(self) -> bool:
        return self.nothing or self.categories == () or self.only_types == ()

    def apply(self, stmt):
        if self.categories is not None:
            stmt = stmt.where(RunEvent.category.in_(self.categories))
        if self.types:
            stmt = stmt.where(RunEvent.type.in_(self.types))
        if self.only_types is not None:
            stmt = stmt.where(RunEvent.type.in_(self.only_types))
        if self.exclude_types:
            stmt = stmt.where(RunEvent.type.not_in(self.exclude_types))
        if self.actor is not None:
            choices = [
                RunEvent.data["invocationId"].as_string() == self.actor,
                RunEvent.data["viewerId"].as_string() == self.actor,
            ]
            if (connection := parse_uuid(self.actor)) is not None:
                choices.append(RunEvent.connection_id == connection)
            stmt = stmt.where(or_(*choices))
        if self.invocation_id is not None:
            stmt = stmt.where(RunEvent.data["invocationId"].as_string() == self.invocation_id)
        if self.time_from is not None:
            stmt = stmt.where(RunEvent.time >= self.time_from)
        if self.time_to is not None:
            stmt = stmt.where(RunEvent.time < self.time_to)
        return stmt


@dataclass(frozen=True)
class Located:
    """An event with the space and runtime of its run."""

    event: RunEvent
    space_id: uuid.UUID
    runtime_id: uuid.UUID


def _located(rows) -> list[Located]:
    return [Located(event, space_id, runtime_id) for event, space_id, runtime_id in rows]


def _select(scope: EventScope):
    return scope.runs(select(RunEvent, Run.space_id, Run.runtime_id).join(Run, Run.id == RunEvent.run_id))


def _bad_cursor() -> InvalidRequest:
    return InvalidRequest(
        "cursor is not a value returned as nextCursor",
        details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
    )


def _position(after) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) of the last event of the previous page, from a list cursor."""
    if after is None:
        return None
    if not isinstance(after, str) or "|" not in after:
        raise _bad_cursor()
    when, _, raw_id = after.partition("|")
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        raise _bad_cursor() from None
    event_id = parse_uuid(raw_id)
    if event_id is None:
        raise _bad_cursor()
    return moment, event_id


async def list_events(
    ctx: AppContext, scope: EventScope, query: EventQuery, page: PageParams, *, newest_first: bool = True
) -> tuple[list[Located], str | None]:
    """One page of the scope's events matching `query`, by (time, id); the cursor resumes after the last."""
    position = _position(page.after)
    if query.empty:
        return [], None
    stmt = query.apply(_select(scope))
    key = tuple_(RunEvent.time, RunEvent.id)
    if position is not None:
        stmt = stmt.where(key < position if newest_first else key > position)
    order = (RunEvent.time.desc(), RunEvent.id.desc()) if newest_first else (RunEvent.time, RunEvent.id)
    async with ctx.db.read() as s:
        rows = _located((await s.execute(stmt.order_by(*order).limit(page.limit + 1))).all())
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1].event
    return rows, encode_cursor(f"{last.time.isoformat()}|{last.id}")


async def get_event(ctx: AppContext, scope: EventScope, event_id: str) -> Located | None:
    """The event if it is in the scope (the account's, or the scoped space's), else None."""
    parsed = parse_uuid(event_id)
    if parsed is None:
        return None
    async with ctx.db.read() as s:
        row = (await s.execute(_select(scope).where(RunEvent.id == parsed))).first()
    return Located(*row) if row is not None else None


# --- following --------------------------------------------------------------------------------


@dataclass
class _Follow:
    """Where a stream is: each run's last sequence number it has passed, and for runs it has not met yet,
    the time their events must be later than."""

    since: datetime
    cursors: dict[uuid.UUID, int] = field(default_factory=dict)
    # Ended runs older than this are no longer looked at.
    horizon: datetime | None = None


async def _runs(ctx: AppContext, scope: EventScope, horizon: datetime) -> list[tuple]:
    stmt = scope.runs(select(Run.id, Run.space_id, Run.runtime_id, Run.event_seq, Run.status)).where(
        or_(Run.status == RunStatus.ACTIVE, and_(Run.finished_at.is_not(None), Run.finished_at >= horizon))
    )
    async with ctx.db.read() as s:
        return list((await s.execute(stmt)).all())


async def _read(ctx: AppContext, run_id: uuid.UUID, query: EventQuery, state: _Follow, head: int) -> tuple[list, int]:
    """The run's matching events after the stream's position in it, up to `head` (plain rows with the
    columns of `RunEvent`); and the new position."""
    stmt = query.apply(select(*RunEvent.__table__.c).where(RunEvent.run_id == run_id, RunEvent.seq <= head))
    after = state.cursors.get(run_id)
    stmt = stmt.where(RunEvent.time > state.since) if after is None else stmt.where(RunEvent.seq > after)
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt.order_by(RunEvent.seq).limit(PAGE))).all())
    if len(rows) == PAGE:
        return rows, rows[-1].seq
    return rows, head  # nothing more up to the head matches: never scan those rows again


async def resume_point(ctx: AppContext, scope: EventScope, event_id: str) -> RunEvent:
    """The event a stream resumes after (`after` or `Last-Event-ID`); 400 when the scope has no such event."""
    found = await get_event(ctx, scope, event_id)
    if found is None:
        raise InvalidRequest(
            "Last-Event-ID / after names no event of this account (or of the scoped space)",
            code="request.invalid",
            details={"fields": [{"field": "after", "in": "query", "message": "unknown event", "type": "event_id"}]},
        )
    return found.event


async def follow(
    ctx: AppContext, scope: EventScope, query: EventQuery, *, after: RunEvent | None = None
) -> AsyncIterator[list[Located] | Beat]:
    """The scope's matching events as they are committed (from `after`, else from `query.time_from`, else
    from now), each run's in sequence order, a page at a time (`Located.event` is a plain row with the
    columns of `RunEvent`); a `Beat` when nothing came for the heartbeat interval."""
    loop = asyncio.get_running_loop()
    heartbeat = ctx.settings.sse_heartbeat_seconds
    now = clock.now()
    with ctx.notifier.subscribe_all() as wakeup:
        if after is not None:
            state = _Follow(since=after.time - timedelta(seconds=REPLAY_SECONDS), cursors={after.run_id: after.seq})
        elif query.time_from is not None:
            state = _Follow(since=query.time_from - timedelta(microseconds=1))
        else:
            state = _Follow(since=now)
            # Runs under way now: only what they record from here on.
            for run_id, _space, _runtime, head, _status in await _runs(ctx, scope, now):
                state.cursors[run_id] = head
        state.horizon = min(state.since, now - timedelta(seconds=ENDED_GRACE_SECONDS))
        last_beat = loop.time()
        while True:
            more = False
            sent = False
            pass_started = clock.now()
            if not query.empty:
                for run_id, space_id, runtime_id, head, _status in await _runs(ctx, scope, state.horizon):
                    if state.cursors.get(run_id, -1) >= head:
                        continue
                    rows, position = await _read(ctx, run_id, query, state, head)
                    state.cursors[run_id] = position
                    more = more or position < head
                    found = [
                        Located(row, space_id, runtime_id)
                        for row in rows
                        if query.time_to is None or row.time < query.time_to
                    ]
                    if found:
                        sent = True
                        yield found
            # Every run in the scope that ended before the grace period has been read to its end.
            state.horizon = max(state.horizon, pass_started - timedelta(seconds=ENDED_GRACE_SECONDS))
            if sent:
                last_beat = loop.time()
            if more:
                continue
            if loop.time() - last_beat >= heartbeat:
                yield Beat()
                last_beat = loop.time()
            await wakeup.wait(max(0.01, min(1.0, heartbeat - (loop.time() - last_beat))))

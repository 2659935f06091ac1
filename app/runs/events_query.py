"""Events across runs and tasks: every event of an account (or of one space, browser or run) read in one
place, listed newest or oldest first, fetched by id, and followed as they are committed.

Events are the events runs and tasks record (`run_events`). An event of a run is located by its run (the
account, space and runtime it belongs to); an event of a task without a run (`run_id` None) by its task's
`commands` row (the account and space; no runtime), so a browser's or a run's scope never holds one.
Lists are ordered by (time, id).

A followed stream reads each run's events by its sequence number, and each task's run-less events by
theirs: either is its owner's commit order (allocated under the run's, or the task's, row lock, so no
event commits before a smaller number of its owner), so a stream never skips an event of a run or task
it follows. Across owners there is no common commit order to resume from: a stream resumed after an
event starts that event's run (or task) just after it, and every other one at `REPLAY_SECONDS` before the
event's time, so it may repeat events of others from those seconds (their `seq` tells them apart), but
skips none that were committed late by the batching writer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import aliased

from app.core import clock
from app.core.context import AppContext
from app.core.errors import InvalidRequest
from app.core.ids import parse_uuid
from app.core.paging import PageParams, encode_cursor
from app.runs.command_models import Command
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
# (Runs and tasks alike: a task that ended this long ago is still looked at.)


@dataclass(frozen=True)
class EventScope:
    """Whose events: an account's, narrowed to a space, a runtime's runs, or one run."""

    account_id: uuid.UUID
    space_id: uuid.UUID | None = None
    runtime_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None

    @property
    def has_tasks(self) -> bool:
        """Whether run-less events of tasks can be in the scope (a browser's or a run's holds none)."""
        return self.runtime_id is None and self.run_id is None

    def tasks(self, stmt, task=Command):
        """`stmt` narrowed to the scope's tasks (`task`: `Command` or an alias of it)."""
        stmt = stmt.where(task.account_id == self.account_id)
        if self.space_id is not None:
            stmt = stmt.where(task.space_id == self.space_id)
        return stmt

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
    names nothing this server records). `actor` is the connection, invocation or viewer that acted.
    `task_id` asks for a task's events (its `task.*`/`tool_call.*` events, and an invocation's
    `invocation.*` events, as a task and an invocation are both command rows), `conversation_id` and
    `agent_id` for those of a conversation's or an agent's tasks."""

    categories: tuple[str, ...] | None = None
    types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    only_types: tuple[str, ...] | None = None
    actor: str | None = None
    invocation_id: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    nothing: bool = False
    task_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None

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
        if self.task_id is not None:
            stmt = stmt.where(
                or_(RunEvent.task_id == self.task_id, RunEvent.data["invocationId"].as_string() == str(self.task_id))
            )
        if self.conversation_id is not None:
            stmt = stmt.where(RunEvent.conversation_id == self.conversation_id)
        if self.agent_id is not None:
            stmt = stmt.where(RunEvent.agent_id == self.agent_id)
        return stmt

    def tasks(self, stmt):
        """`stmt` (over `Command`) narrowed to the tasks whose events this query can match."""
        if self.task_id is not None:
            stmt = stmt.where(Command.id == self.task_id)
        if self.conversation_id is not None:
            stmt = stmt.where(Command.conversation_id == self.conversation_id)
        if self.agent_id is not None:
            stmt = stmt.where(Command.agent_id == self.agent_id)
        return stmt


@dataclass(frozen=True)
class Located:
    """An event with the space and runtime of its run (a run-less event of a task: its task's space, no
    runtime)."""

    event: RunEvent
    space_id: uuid.UUID
    runtime_id: uuid.UUID | None


def _located(rows) -> list[Located]:
    return [Located(event, space_id, runtime_id) for event, space_id, runtime_id in rows]


def _select(scope: EventScope):
    """(event, space id, runtime id) of the scope's events: of runs in the scope, and of tasks in it that
    have no run (only when the scope can hold those: not a browser's or a run's)."""
    if not scope.has_tasks:
        return scope.runs(select(RunEvent, Run.space_id, Run.runtime_id).join(Run, Run.id == RunEvent.run_id))
    task = aliased(Command)
    stmt = (
        select(RunEvent, func.coalesce(Run.space_id, task.space_id), Run.runtime_id)
        .outerjoin(Run, Run.id == RunEvent.run_id)
        .outerjoin(task, and_(RunEvent.run_id.is_(None), task.id == RunEvent.task_id))
        .where(or_(Run.account_id == scope.account_id, task.account_id == scope.account_id))
    )
    if scope.space_id is not None:
        stmt = stmt.where(or_(Run.space_id == scope.space_id, task.space_id == scope.space_id))
    return stmt


def _bad_cursor() -> InvalidRequest:
    return InvalidRequest(
        "cursor is not a value returned as nextCursor",
        details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
    )


def cursor_position(after) -> tuple[datetime, uuid.UUID] | None:
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
    position = cursor_position(page.after)
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

# What a stream follows: a run's events, or a task's run-less events, each numbered on its own.
_RUN, _TASK = "run", "task"


@dataclass(frozen=True)
class _Owner:
    """A run or a task a stream reads events of: where its events are located, and its last number now."""

    kind: str  # _RUN or _TASK
    id: uuid.UUID
    space_id: uuid.UUID
    runtime_id: uuid.UUID | None
    head: int

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.kind, self.id

    def events(self):
        if self.kind == _RUN:
            return RunEvent.run_id == self.id
        return and_(RunEvent.task_id == self.id, RunEvent.run_id.is_(None))


def _key_of(event: RunEvent) -> tuple[str, uuid.UUID]:
    """Whose numbering an event is in: its run's, else (run-less) its task's."""
    return (_RUN, event.run_id) if event.run_id is not None else (_TASK, event.task_id)


@dataclass
class _Follow:
    """Where a stream is: each run's (and task's) last sequence number it has passed, and for those it has
    not met yet, the time their events must be later than."""

    since: datetime
    cursors: dict[tuple[str, uuid.UUID], int] = field(default_factory=dict)
    # Runs and tasks that ended before this are no longer looked at.
    horizon: datetime | None = None


async def _owners(ctx: AppContext, scope: EventScope, query: EventQuery, horizon: datetime) -> list[_Owner]:
    """The scope's runs under way or ended since `horizon`, then (when the scope can hold them) its tasks
    under way or ended since then with run-less events, narrowed by the query's task, conversation and
    agent."""
    runs = scope.runs(select(Run.id, Run.space_id, Run.runtime_id, Run.event_seq)).where(
        or_(Run.status == RunStatus.ACTIVE, and_(Run.finished_at.is_not(None), Run.finished_at >= horizon))
    )
    async with ctx.db.read() as s:
        found = [_Owner(_RUN, *row) for row in (await s.execute(runs)).all()]
        if scope.has_tasks:
            head = (
                select(func.max(RunEvent.seq))
                .where(RunEvent.task_id == Command.id, RunEvent.run_id.is_(None))
                .scalar_subquery()
            )
            tasks = query.tasks(scope.tasks(select(Command.id, Command.space_id, head))).where(
                Command.execution_mode == "durable",
                or_(Command.finished_at.is_(None), Command.finished_at >= horizon),
            )
            found += [
                _Owner(_TASK, task_id, space_id, None, top)
                for task_id, space_id, top in (await s.execute(tasks)).all()
                if top is not None
            ]
    return found


async def _read(ctx: AppContext, owner: _Owner, query: EventQuery, state: _Follow) -> tuple[list, int]:
    """The owner's matching events after the stream's position in it, up to its head (plain rows with the
    columns of `RunEvent`); and the new position."""
    stmt = query.apply(select(*RunEvent.__table__.c).where(owner.events(), RunEvent.seq <= owner.head))
    after = state.cursors.get(owner.key)
    stmt = stmt.where(RunEvent.time > state.since) if after is None else stmt.where(RunEvent.seq > after)
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt.order_by(RunEvent.seq).limit(PAGE))).all())
    if len(rows) == PAGE:
        return rows, rows[-1].seq
    return rows, owner.head  # nothing more up to the head matches: never scan those rows again


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
    from now), each run's in sequence order and each task's run-less events in theirs, a page at a time
    (`Located.event` is a plain row with the columns of `RunEvent`); a `Beat` when nothing came for the
    heartbeat interval."""
    loop = asyncio.get_running_loop()
    heartbeat = ctx.settings.sse_heartbeat_seconds
    now = clock.now()
    with ctx.notifier.subscribe_all() as wakeup:
        if after is not None:
            state = _Follow(since=after.time - timedelta(seconds=REPLAY_SECONDS), cursors={_key_of(after): after.seq})
        elif query.time_from is not None:
            state = _Follow(since=query.time_from - timedelta(microseconds=1))
        else:
            state = _Follow(since=now)
            # Runs and tasks under way now: only what they record from here on.
            for owner in await _owners(ctx, scope, query, now):
                state.cursors[owner.key] = owner.head
        state.horizon = min(state.since, now - timedelta(seconds=ENDED_GRACE_SECONDS))
        last_beat = loop.time()
        while True:
            more = False
            sent = False
            pass_started = clock.now()
            if not query.empty:
                for owner in await _owners(ctx, scope, query, state.horizon):
                    if state.cursors.get(owner.key, -1) >= owner.head:
                        continue
                    rows, position = await _read(ctx, owner, query, state)
                    state.cursors[owner.key] = position
                    more = more or position < owner.head
                    found = [
                        Located(row, owner.space_id, owner.runtime_id)
                        for row in rows
                        if query.time_to is None or row.time < query.time_to
                    ]
                    if found:
                        sent = True
                        yield found
            # Every run and task in the scope that ended before the grace period has been read to its end.
            state.horizon = max(state.horizon, pass_started - timedelta(seconds=ENDED_GRACE_SECONDS))
            if sent:
                last_beat = loop.time()
            if more:
                continue
            if loop.time() - last_beat >= heartbeat:
                yield Beat()
                last_beat = loop.time()
            await wakeup.wait(max(0.01, min(1.0, heartbeat - (loop.time() - last_beat))))

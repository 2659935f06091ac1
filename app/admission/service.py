"""Admission: whether a browser may start now, and the durable FIFO queue of starts waiting for a slot.

Limits: slots per deployment (by driver and location), concurrent browsers per account and per space,
and the spending caps of app/usage/caps.py. A start that is refused may wait (`wait` seconds): it takes
a ticket (a row, so every server process sees the same queue and a restart loses nothing) and is
admitted when a slot is free for it after every earlier ticket that could use one. Decisions are taken
under one lock (a PostgreSQL advisory lock across processes; SQLite has one writer anyway), inside the
transaction that opens the run, so two processes cannot both take the last slot.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.admission import caller
from app.admission.models import AdmissionTicket
from app.core import clock, ids, metrics
from app.core.context import AppContext
from app.core.driver import DriverError
from app.core.errors import TooManyRequests, Unavailable
from app.runs.models import Run
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS
from app.usage import caps

T = TypeVar("T")

# Any 64-bit constant: the PostgreSQL advisory lock that serialises admission across processes.
_LOCK_KEY = 0x6263_7472_6C63_6170
# Where browsers run here: this host (or the nodes its driver schedules on), one location per deployment.
LOCATION = "local"
# Refusal codes by the limit that refused (the deployment's is the code 429s always had).
CODES = {
    "deployment": "runtime.capacity_exhausted",
    "account": "subaccounts.active_run_limit_exceeded",
    "space": "browser.concurrent_quota_exceeded",
    # No node of the browser's location (or of any, for `auto`) has room: the swarm's own reservations.
    "location": "runtime.capacity_exhausted",
}
# Runs whose lifetimes estimate when slots free up, and how long that estimate is reused.
_LIFETIME_SAMPLE = 50
_LIFETIME_CACHE_SECONDS = 10.0
_RETRY_AFTER_MAX = 3600
_OWNER = f"{socket.gethostname()}:{os.getpid()}"


class Refused(TooManyRequests):
    """429: no slot for this start now. Waiting (`wait`) may help, unlike a spending cap."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the queue says of one start: admitted (`scope` None) or the limit that holds it back."""

    scope: str | None
    limit: int
    live: int
    # 1 + the tickets ahead of this start (its place if it waited).
    position: int
    depth: int


def pool(ctx: AppContext) -> tuple[str, str]:
    """The slot pool a start of this deployment draws from: (driver, location)."""
    return ctx.driver.name, LOCATION


def account_limit(ctx: AppContext, limits: dict[str, Any] | None) -> int | None:
    """An account's concurrent browsers: its `maxActiveRuns`, else the deployment's default (None: none)."""
    value = (limits or {}).get("maxActiveRuns")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return ctx.settings.max_browsers_per_account


async def _lock(ctx: AppContext, s: AsyncSession) -> None:
    if ctx.db.is_postgres:
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _fresh(ctx: AppContext, now: datetime):
    """Tickets of processes still alive whose requests still wait."""
    stale = now - timedelta(seconds=ctx.settings.admission_ticket_ttl_seconds)
    return (AdmissionTicket.heartbeat_at >= stale) & (AdmissionTicket.deadline >= now)


async def _purge(ctx: AppContext, s: AsyncSession, now: datetime) -> None:
    await s.execute(delete(AdmissionTicket).where(~_fresh(ctx, now)))


def _live():
    return Runtime.status.in_(RS.LIVE), Runtime.deleted_at.is_(None)


async def _counts(s: AsyncSession, column, keys: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await s.execute(select(column, func.count()).where(*_live(), column.in_(keys)).group_by(column))
    return {key: count for key, count in rows.all()}


async def account_running(ctx: AppContext, account_id: uuid.UUID) -> int:
    """The account's browsers that count against its limit now."""
    async with ctx.db.read() as s:
        return (await _counts(s, Runtime.account_id, {account_id})).get(account_id, 0)


async def decide(
    ctx: AppContext, s: AsyncSession, runtime: Runtime, ticket_id: uuid.UUID | None, now: datetime
) -> Verdict:
    """Whether `runtime` may start now: after every earlier ticket that can use a slot has one (FIFO),
    is there a slot left within the deployment's, its account's and its space's limits?"""
    driver, location = pool(ctx)
    queue = list(
        (
            await s.execute(
                select(AdmissionTicket)
                .where(AdmissionTicket.driver == driver, AdmissionTicket.location == location, _fresh(ctx, now))
                .order_by(AdmissionTicket.seq)
            )
        ).scalars()
    )
    mine = next((i for i, t in enumerate(queue) if t.id == ticket_id), None)
    ahead = [t for t in (queue if mine is None else queue[:mine]) if t.runtime_id != runtime.id]
    accounts = {runtime.account_id, *(t.account_id for t in ahead)}
    spaces = {runtime.space_id, *(t.space_id for t in ahead)}
    total = ctx.settings.max_runtimes
    used = (
        await s.execute(select(func.count()).select_from(Runtime).where(*_live(), Runtime.driver == driver))
    ).scalar_one()
    by_account = await _counts(s, Runtime.account_id, accounts)
    space_limit = ctx.settings.max_browsers_per_space
    by_space = await _counts(s, Runtime.space_id, spaces) if space_limit is not None else {}
    rows = await s.execute(select(Account.id, Account.limits).where(Account.id.in_(accounts)))
    limits = {account_id: account_limit(ctx, value) for account_id, value in rows.all()}
    own_account, own_space = by_account.get(runtime.account_id, 0), by_space.get(runtime.space_id, 0)

    def fits(account_id: uuid.UUID, space_id: uuid.UUID) -> bool:
        cap = limits.get(account_id)
        return (cap is None or by_account.get(account_id, 0) < cap) and (
            space_limit is None or by_space.get(space_id, 0) < space_limit
        )

    # Earlier tickets first: each that fits its own limits takes one of the free slots.
    free = total - used
    for t in ahead:
        if free <= 0:
            break
        if fits(t.account_id, t.space_id):
            free -= 1
            by_account[t.account_id] = by_account.get(t.account_id, 0) + 1
            by_space[t.space_id] = by_space.get(t.space_id, 0) + 1
    position, depth = len(ahead) + 1, len(queue)
    cap = limits.get(runtime.account_id)
    if cap is not None and by_account.get(runtime.account_id, 0) >= cap:
        return Verdict("account", cap, own_account, position, depth)
    if space_limit is not None and by_space.get(runtime.space_id, 0) >= space_limit:
        return Verdict("space", space_limit, own_space, position, depth)
    if free <= 0:
        return Verdict("deployment", total, used, position, depth)
    room = await _location_room(ctx, runtime)
    if room is not None and room[0] <= 0:
        return Verdict("location", room[1], room[1] - room[0], position, depth)
    return Verdict(None, total, used, position, depth)


async def _location_room(ctx: AppContext, runtime: Runtime) -> tuple[int, int] | None:
    """(free, slots) on the nodes a placing driver (the Swarm driver's `nodes()`) may put this browser on:
    those of its location, or all for `auto`. None for drivers that do not place browsers on nodes. The
    nodes' free room is the cluster's own count (each running task's reservation), not ours."""
    placing = getattr(ctx.driver, "nodes", None)
    if placing is None:
        return None
    wanted = (runtime.launch_options or {}).get("location")
    try:
        nodes = [n for n in await placing() if n.available and wanted in (None, n.location)]
    except DriverError as exc:
        raise Unavailable(exc.message, code=exc.code) from exc
    return sum(n.free for n in nodes), sum(n.slots for n in nodes)


_lifetimes: dict[int, tuple[float, float | None]] = {}


async def mean_lifetime(ctx: AppContext, s: AsyncSession) -> float | None:
    """Seconds a browser ran, on average, over the latest finished runs (None before any)."""
    loop_now = asyncio.get_running_loop().time()
    cached = _lifetimes.get(id(ctx))
    if cached is not None and loop_now - cached[0] < _LIFETIME_CACHE_SECONDS:
        return cached[1]
    # Newest first by id (UUIDv7: creation order), which the primary key serves without a sort.
    rows = (
        await s.execute(
            select(Run.started_at, Run.finished_at)
            .where(Run.finished_at.is_not(None))
            .order_by(Run.id.desc())
            .limit(_LIFETIME_SAMPLE)
        )
    ).all()
    spans = [(end - start).total_seconds() for start, end in rows if end is not None and start is not None]
    mean = sum(spans) / len(spans) if spans else None
    _lifetimes[id(ctx)] = (loop_now, mean)
    return mean


async def refusal(
    ctx: AppContext,
    s: AsyncSession,
    verdict: Verdict,
    *,
    queue_full: bool = False,
    share: tuple[int, int] | None = None,
) -> Refused:
    """The 429 for a start held back: Retry-After estimated from the queue (the place of this start
    times a browser's mean lifetime over the slots of the limit that holds it), the place in details.
    `share` (held, limit): the queue is full for the start's organization, not for the deployment."""
    scope = verdict.scope or "deployment"
    lifetime = await mean_lifetime(ctx, s)
    slots = max(verdict.limit, 1)
    if lifetime is None:
        seconds = ctx.settings.capacity_retry_after_seconds * math.ceil(verdict.position / slots)
    else:
        seconds = math.ceil(verdict.position * lifetime / slots)
    seconds = min(max(seconds, 1), _RETRY_AFTER_MAX)
    driver, location = pool(ctx)
    ahead = verdict.position - 1
    if share is not None:
        message = (
            f"The organization's share of the queue is full ({share[0]} of its starts wait, at most {share[1]});"
            f" retry after about {seconds} s"
        )
    elif queue_full:
        message = f"The queue of starts is full ({verdict.depth} waiting); retry after about {seconds} s"
    elif scope == "deployment":
        message = f"All {verdict.limit} browser slots are in use"
    elif scope == "location":
        message = f"No node where this browser may run has room for another ({verdict.limit} slots there)"
    elif scope == "account":
        message = f"The account's {verdict.limit} concurrent browsers are running"
    else:
        message = f"The space's {verdict.limit} concurrent browsers are running"
    if not queue_full:
        waiting = f"; {ahead} start(s) wait ahead of this one" if ahead else ""
        message += f"{waiting}. Stop a browser, retry after about {seconds} s, or pass wait to queue"
    details = {
        "scope": scope,
        "limit": verdict.limit,
        "live": verdict.live,
        "position": verdict.position,
        "queueDepth": verdict.depth,
        "queueFull": queue_full or share is not None,
        "retryAfterSeconds": seconds,
        "driver": driver,
        "location": location,
    }
    if details["queueFull"]:
        # Whose queue is full: the deployment's, or the organization's share of it (queueLimit, queueHeld).
        details["queueScope"] = "account" if share is not None else "deployment"
        if share is not None:
            details["queueHeld"], details["queueLimit"] = share
    return Refused(message, code=CODES[scope], details=details, headers={"Retry-After": str(seconds)})


async def admit(ctx: AppContext, s: AsyncSession, runtime: Runtime, ticket_id: uuid.UUID | None) -> None:
    """Inside the transaction that opens the run: raise if this start may not have a slot now (a spending
    cap's refusal, or `Refused`); else the start's ticket, if any, leaves the queue with that commit."""
    await _lock(ctx, s)
    now = clock.now()
    capped = await caps.refusal(s, runtime.account_id, runtime.space_id, ctx.settings.price_cents_per_browser_minute)
    if capped is not None:
        metrics.admission_refusals.labels(capped.code).inc()
        raise capped
    await _purge(ctx, s, now)
    verdict = await decide(ctx, s, runtime, ticket_id, now)
    if verdict.scope is not None:
        refused = await refusal(ctx, s, verdict)
        metrics.admission_refusals.labels(refused.code).inc()
        raise refused
    if ticket_id is not None:
        enqueued = (
            await s.execute(
                delete(AdmissionTicket).where(AdmissionTicket.id == ticket_id).returning(AdmissionTicket.enqueued_at)
            )
        ).scalar_one_or_none()
        if enqueued is not None:
            metrics.admission_wait_seconds.observe(max((now - enqueued).total_seconds(), 0.0))


# --- waiting --------------------------------------------------------------------------------------


async def _enqueue(ctx: AppContext, runtime_id: uuid.UUID, seconds: float) -> uuid.UUID:
    """A ticket at the end of the queue; `Refused` (queue full) when the queue holds its maximum."""
    async with ctx.db.transaction() as s:
        await _lock(ctx, s)
        now = clock.now()
        await _purge(ctx, s, now)
        runtime = await s.get(Runtime, runtime_id)
        driver, location = pool(ctx)
        depth = (
            await s.execute(
                select(func.count())
                .select_from(AdmissionTicket)
                .where(AdmissionTicket.driver == driver, AdmissionTicket.location == location)
            )
        ).scalar_one()
        if depth >= ctx.settings.admission_queue_max:
            verdict = await decide(ctx, s, runtime, None, now)
            metrics.admission_refusals.labels("queue.full").inc()
            raise await refusal(ctx, s, verdict, queue_full=True)
        share = queue_share(ctx)
        held = await _org_tickets(s, runtime.account_id, driver, location)
        if held >= share:
            verdict = await decide(ctx, s, runtime, None, now)
            metrics.admission_refusals.labels("queue.account_full").inc()
            raise await refusal(ctx, s, verdict, share=(held, share))
        last = (await s.execute(select(func.max(AdmissionTicket.seq)))).scalar_one()
        ticket = AdmissionTicket(
            id=ids.new_id(),
            seq=(last or 0) + 1,
            runtime_id=runtime.id,
            account_id=runtime.account_id,
            space_id=runtime.space_id,
            driver=driver,
            location=location,
            owner=_OWNER,
            enqueued_at=now,
            heartbeat_at=now,
            deadline=now + timedelta(seconds=seconds),
        )
        s.add(ticket)
    return ticket.id


def queue_share(ctx: AppContext) -> int:
    """Waiting starts one organization may hold: so one tenant cannot fill the deployment's queue."""
    configured = ctx.settings.admission_queue_max_per_account
    return configured if configured is not None else max(1, ctx.settings.admission_queue_max // 4)


async def _org_tickets(s: AsyncSession, account_id: uuid.UUID, driver: str, location: str) -> int:
    """Tickets (fresh ones: the caller purged) of the organization `account_id` belongs to, its subaccounts
    included: counted per organization, else each subaccount would multiply its share."""
    parent = (await s.execute(select(Account.parent_id).where(Account.id == account_id))).scalar_one_or_none()
    org = parent or account_id
    stmt = (
        select(func.count())
        .select_from(AdmissionTicket)
        .join(Account, Account.id == AdmissionTicket.account_id)
        .where(
            AdmissionTicket.driver == driver,
            AdmissionTicket.location == location,
            (Account.id == org) | (Account.parent_id == org),
        )
    )
    return (await s.execute(stmt)).scalar_one()


async def _beat(ctx: AppContext, ticket_id: uuid.UUID) -> bool:
    """Refresh the ticket; False when it is gone (dropped as stale after a long stall here)."""
    async with ctx.db.transaction() as s:
        done = await s.execute(
            update(AdmissionTicket).where(AdmissionTicket.id == ticket_id).values(heartbeat_at=clock.now())
        )
    return done.rowcount == 1


async def _leave(ctx: AppContext, ticket_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as s:
        await s.execute(delete(AdmissionTicket).where(AdmissionTicket.id == ticket_id))


async def _look(ctx: AppContext, runtime_id: uuid.UUID, ticket_id: uuid.UUID) -> Refused | None:
    """Without the lock or a write: None when the ticket would be admitted now, else its refusal."""
    async with ctx.db.read() as s:
        runtime = await s.get(Runtime, runtime_id)
        if runtime is None or runtime.status not in RS.STARTABLE:
            return None  # started, deleted or moving: the attempt says what it is
        verdict = await decide(ctx, s, runtime, ticket_id, clock.now())
        return None if verdict.scope is None else await refusal(ctx, s, verdict)


async def queued(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    wait: float,
    attempt: Callable[[uuid.UUID | None], Awaitable[T]],
) -> T:
    """Run `attempt` (the launch, which calls `admit` with the ticket it is given); when it is refused
    and `wait` allows, wait in the queue for a slot, in order, up to `wait` seconds, trying again
    whenever a look says a slot is free for this ticket. The ticket leaves the queue however this
    ends: admitted, refused at the deadline, the client gone, or cancelled."""
    try:
        return await attempt(None)
    except Refused as first:
        if wait <= 0 or first.details.get("queueFull"):
            raise
        refused = first
    loop = asyncio.get_running_loop()
    until = loop.time() + wait
    settings = ctx.settings
    gone = caller.gone_check()
    ticket: uuid.UUID | None = None
    beaten = 0.0
    try:
        while True:
            left = until - loop.time()
            if left <= 0:
                raise refused
            if ticket is None:
                ticket, beaten = await _enqueue(ctx, runtime_id, left), loop.time()
            elif loop.time() - beaten >= settings.admission_ticket_ttl_seconds / 3:
                if not await _beat(ctx, ticket):
                    ticket = None  # dropped as stale: back of the queue on the next turn
                    continue
                beaten = loop.time()
            await asyncio.sleep(min(settings.admission_poll_seconds, max(left, 0)))
            if gone is not None and await gone():
                raise refused  # nobody reads it; the ticket leaves below so no slot waits for it
            if loop.time() >= until:
                continue
            looked = await _look(ctx, runtime_id, ticket)
            if looked is not None:
                refused = looked
                continue
            try:
                return await attempt(ticket)
            except Refused as again:
                refused = again
    finally:
        if ticket is not None:
            await asyncio.shield(_leave(ctx, ticket))


# --- the capacity signal --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slots:
    driver: str
    location: str
    total: int
    used: int


@dataclass(frozen=True, slots=True)
class Pressure:
    slots: list[Slots]
    queue_depth: int
    oldest_wait_seconds: float
    queue_max: int


async def pressure(ctx: AppContext) -> Pressure:
    """Slots by pool, the live queue and how long its oldest entry has waited."""
    driver, location = pool(ctx)
    now = clock.now()
    async with ctx.db.read() as s:
        used = (
            await s.execute(select(func.count()).select_from(Runtime).where(*_live(), Runtime.driver == driver))
        ).scalar_one()
        depth, oldest = (
            await s.execute(
                select(func.count(), func.min(AdmissionTicket.enqueued_at)).where(
                    AdmissionTicket.driver == driver, AdmissionTicket.location == location, _fresh(ctx, now)
                )
            )
        ).one()
    waited = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Pressure(
        slots=[Slots(driver, location, ctx.settings.max_runtimes, used)],
        queue_depth=depth,
        oldest_wait_seconds=round(waited, 3),
        queue_max=ctx.settings.admission_queue_max,
    )


@metrics.on_scrape
async def _queue_depth(ctx: AppContext) -> None:
    """The deployment's queue is rows every process sees, so each reports the same depth."""
    metrics.admission_queue_depth.set((await pressure(ctx)).queue_depth)

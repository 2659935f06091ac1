"""Who controls a runtime's browser: the one home of the controller-lock policy.

A runtime has at most one controller: a CDP lease (`connection`), an `invocation`, an input live
viewer (`live_view`) or one API operation inside the browser (`api`: a page or computer-use call,
app/browsing/access.py). The runtime row is the truth: its controller columns are set by a conditional
update in the same transaction that records the holder (lease row, invocation row, viewer row), and
the epoch grows on every take. A holder's token is `kind:id:epoch`; attach, renew and release compare
it with the row, so a holder that was replaced (a lower epoch) can neither drive, renew nor release.
`ctx.lock` (Redis or in-process) only caches the row for quick reads; it is written after commit,
rebuilt from the rows when missing (a Redis restart loses nothing) and its failures never fail a call.

The policy, in one place:
- a live holder keeps the runtime until it lets go or its expiry passes (leases: their TTL; the flat
  run connection, invocations and viewers: renewed by whoever keeps them alive);
- a holder whose own record says it is over (lease not active, invocation finished, viewer revoked,
  or any of them from an earlier run) is stale and is taken over;
- the flat API's run connection yields to an invocation, an input viewer or an API operation while no
  client is attached to it, and gets the runtime back when that holder lets go (or expires); another
  lease never takes it.

Every change of holder grows the epoch and is a `control.changed` run event of the runtime's run,
except the brief holds of API operations (taken and given back around one call: their own event
records the call), so a run's record says who controlled the browser when.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import Connection
from app.connections.models import ConnectionScope as Scope
from app.connections.models import ConnectionStatus as CS
from app.core import clock, ids, metrics
from app.core.context import AppContext
from app.core.db import AFTER_COMMIT
from app.core.errors import Conflict
from app.live.models import Viewer
from app.locks import Holder, epoch_of
from app.runs import events
from app.runs.command_models import TERMINAL_STATUSES, Command
from app.runtimes.models import Runtime

log = structlog.get_logger(__name__)

# The flat run connection is renewed by every server's reaper (every 10 s); it lapses this long after
# the last renewal, so a deployment whose servers all died frees its runtimes.
RUN_CONNECTION_TTL_MS = 120_000
# A cache write that takes longer than this is given up (the cache is rebuilt from the rows anyway).
CACHE_TIMEOUT_SECONDS = 1.0


# Who a holder kind is, in a person's words (the refusal's message) and in the current generation's
# (`agent`, `human`; app/current/shapes.py names them the same way).
WHO = {
    "connection": "a CDP client (lease {id})",
    "invocation": "an AI task (invocation {id})",
    "live_view": "a person through a live view (viewer {id})",
    "api": "an API operation in the browser",
}
HOLDER_WORDS = {"connection": "agent", "invocation": "agent", "api": "agent", "live_view": "human"}


def _short(ident: str) -> str:
    parsed = ids.parse_uuid(ident)
    return str(parsed) if parsed else ident


def controller_busy(runtime_id: object, holder: Holder, until: datetime | None = None) -> Conflict:
    """409 `runtime.controller_busy`: who controls the browser and, when its hold has an end, until when
    (`details.holder`: `kind`, `id`, `holder` (`agent`/`human`), `until`)."""
    who = WHO.get(holder.kind, holder.kind + " {id}").format(id=_short(holder.id)) if holder.kind != "none" else ""
    if not who:
        message = "The browser is not available to control (it is not running)"
    elif until is not None and holder.kind == "connection":
        # A lease's hold ends with its TTL (unless renewed or released sooner); the others' holds are
        # renewed while they work, so only "when it lets go" is true of them.
        message = (
            f"The browser is controlled by {who} until {until.strftime('%H:%M:%S')} UTC, when its lease ends "
            "unless it is renewed or released sooner; try again then"
        )
    else:
        message = f"The browser is controlled by {who}; try again when it lets go"
    if holder.kind == "connection":
        message += ", or revoke the browser's connections"
    return Conflict(
        message,
        code="runtime.controller_busy",
        details={
            "runtimeId": str(runtime_id),
            "holder": {
                "kind": holder.kind,
                "id": holder.id,
                "holder": HOLDER_WORDS.get(holder.kind, "none"),
                "until": clock.iso(until) if until is not None else None,
            },
        },
    )


def holder_of(runtime: Runtime) -> Holder | None:
    return Holder(runtime.controller_kind, runtime.controller_id) if runtime.controller_kind else None


def token_of(runtime: Runtime) -> str | None:
    holder = holder_of(runtime)
    return holder.token(runtime.controller_epoch) if holder else None


def _live(runtime: Runtime, now: datetime) -> bool:
    return runtime.controller_kind is not None and (
        runtime.controller_expires_at is None or runtime.controller_expires_at > now
    )


def _matches(token: str):
    holder = Holder.of_token(token)
    return (
        Runtime.controller_kind == holder.kind,
        Runtime.controller_id == holder.id,
        Runtime.controller_epoch == epoch_of(token),
    )


async def _row(s: AsyncSession, runtime_id: uuid.UUID) -> Runtime | None:
    return (
        await s.execute(
            select(Runtime).where(Runtime.id == runtime_id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


# --- the cache, written after commit ---------------------------------------------------------


def _after_commit(ctx: AppContext, s: AsyncSession, action) -> None:
    async def run() -> None:
        try:
            await asyncio.wait_for(action(), CACHE_TIMEOUT_SECONDS)
        except Exception as exc:  # the database decided; a cache that missed a write is rebuilt
            log.warning("controller_cache_write_failed", error=repr(exc))

    s.info.setdefault(AFTER_COMMIT, []).append(run)


def _cache_put(ctx: AppContext, s: AsyncSession, runtime_id: uuid.UUID, token: str, ttl_ms: int) -> None:
    _after_commit(ctx, s, lambda: ctx.lock.put(str(runtime_id), token, ttl_ms))


def _cache_drop(ctx: AppContext, s: AsyncSession, runtime_id: uuid.UUID, token: str) -> None:
    _after_commit(ctx, s, lambda: ctx.lock.drop(str(runtime_id), token))


# --- decisions ---------------------------------------------------------------------------------


async def take(
    ctx: AppContext,
    s: AsyncSession,
    runtime_id: uuid.UUID,
    holder: Holder,
    ttl_ms: int,
    previous: str | None = None,
    actor: str | None = None,
    viewer: str | None = None,
) -> str:
    """Make `holder` the controller in the caller's transaction and return its token, or raise 409
    `runtime.controller_busy` naming who holds it and until when. `previous`: the kind of holder that
    just let go in this transaction (for the record); `actor`: who made the change (`human`, `script`,
    `platform`; by default the taker: a live viewer is a person, anything else a script); `viewer`: the
    live viewer (hex id) of a person who made the change by letting go."""
    runtime = await _row(s, runtime_id)
    if runtime is None:
        metrics.controller_takes.labels(holder.kind, "busy").inc()
        raise controller_busy(runtime_id, Holder("none", ""))
    now = clock.now()
    current = holder_of(runtime)
    if _live(runtime, now) and current != holder and not await _may_take(s, runtime, current, holder):
        metrics.controller_takes.labels(holder.kind, "busy").inc()
        raise controller_busy(runtime_id, current, runtime.controller_expires_at)
    if current is not None and current != holder:
        log.info(
            "controller_taken_over",
            runtime_id=str(runtime_id),
            previous=f"{current.kind}:{current.id}",
            by=f"{holder.kind}:{holder.id}",
        )
    epoch = runtime.controller_epoch + 1
    previous_kind = current.kind if current is not None and _live(runtime, now) else previous
    result = await s.execute(
        update(Runtime)
        .where(Runtime.id == runtime_id, Runtime.controller_epoch == runtime.controller_epoch)
        .values(
            controller_kind=holder.kind,
            controller_id=holder.id,
            controller_epoch=epoch,
            controller_expires_at=now + timedelta(milliseconds=ttl_ms),
            controller_since=now,
        )
    )
    if result.rowcount != 1:  # another transaction took it between our read and our write
        runtime = await _row(s, runtime_id)
        metrics.controller_takes.labels(holder.kind, "busy").inc()
        raise controller_busy(
            runtime_id, holder_of(runtime) or Holder("none", ""), runtime.controller_expires_at if runtime else None
        )
    token = holder.token(epoch)
    metrics.controller_takes.labels(holder.kind, "granted").inc()
    _cache_put(ctx, s, runtime_id, token, ttl_ms)
    if current != holder:
        await _changed(
            s, runtime.active_run_id, holder, epoch, "taken", previous_kind, actor or _actor_of(holder), viewer
        )
    return token


async def renew(ctx: AppContext, s: AsyncSession, runtime_id: uuid.UUID, token: str, ttl_ms: int) -> bool:
    """Extend `token`'s hold; False when it no longer holds the runtime (it was taken over)."""
    result = await s.execute(
        update(Runtime)
        .where(Runtime.id == runtime_id, *_matches(token))
        .values(controller_expires_at=clock.now() + timedelta(milliseconds=ttl_ms))
    )
    if result.rowcount == 1:
        _cache_put(ctx, s, runtime_id, token, ttl_ms)
    return result.rowcount == 1


async def release(
    ctx: AppContext, s: AsyncSession, runtime_id: uuid.UUID, token: str | None, actor: str | None = None
) -> bool:
    """Let go of the runtime if `token` still holds it; a run connection that yielded gets it back.
    `actor`: who let go (by default the holder: a live viewer is a person, anything else a script)."""
    if not token:
        return False
    _cache_drop(ctx, s, runtime_id, token)
    released = (
        await s.execute(
            update(Runtime)
            .where(Runtime.id == runtime_id, *_matches(token))
            .values(
                controller_kind=None,
                controller_id=None,
                controller_expires_at=None,
                controller_since=clock.now(),
                controller_epoch=Runtime.controller_epoch + 1,
            )
            .returning(Runtime.active_run_id, Runtime.controller_epoch)
        )
    ).one_or_none()
    if released is None:
        return False
    holder = Holder.of_token(token)
    actor = actor or _actor_of(holder)
    viewer = holder.id if holder.kind == "live_view" else None
    given_back = holder.kind != "connection" and await _give_back(
        ctx, s, runtime_id, previous=holder.kind, actor=actor, viewer=viewer
    )
    if not given_back:
        await _changed(
            s, released.active_run_id, None, released.controller_epoch, "released", holder.kind, actor, viewer
        )
    return True


async def holds(s: AsyncSession, runtime: Runtime, token: str | None) -> bool:
    """Whether `token` is the runtime's controller now (the row as read in the caller's transaction)."""
    return token is not None and token_of(runtime) == token


async def end_run(ctx: AppContext, s: AsyncSession, runtime_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """The run ended: whoever controlled the runtime for that run lets go (a holder of a newer run stays)."""
    runtime = await _row(s, runtime_id)
    holder = holder_of(runtime) if runtime else None
    if holder is None or await _run_of_holder(s, holder) not in (run_id, None):
        return
    token = token_of(runtime)
    _cache_drop(ctx, s, runtime_id, token)
    result = await s.execute(
        update(Runtime)
        .where(Runtime.id == runtime_id, *_matches(token))
        .values(
            controller_kind=None,
            controller_id=None,
            controller_expires_at=None,
            controller_since=clock.now(),
            controller_epoch=Runtime.controller_epoch + 1,
        )
    )
    if result.rowcount == 1:
        await _changed(s, run_id, None, runtime.controller_epoch + 1, "run_ended", holder.kind, "platform")


async def current(ctx: AppContext, runtime_id: uuid.UUID) -> str | None:
    """The controller's token: from the cache, else from the row (and the cache is put back)."""
    try:
        cached = await asyncio.wait_for(ctx.lock.current(str(runtime_id)), CACHE_TIMEOUT_SECONDS)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    async with ctx.db.transaction() as s:
        runtime = await s.get(Runtime, runtime_id)
        if runtime is None or not _live(runtime, clock.now()):
            return None
        token = token_of(runtime)
        ttl_ms = _remaining_ms(runtime)
        _cache_put(ctx, s, runtime_id, token, ttl_ms)
    return token


# --- upkeep (the reaper of every server process) -----------------------------------------------


async def keep_run_connections(ctx: AppContext) -> None:
    """Renew every active flat run connection's hold; one that lost it (its viewer or invocation ended
    without handing back, or died) takes the runtime back once that holder is gone."""
    async with ctx.db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(Connection.id, Connection.runtime_id, Connection.lock_token).where(
                        Connection.status == CS.ACTIVE, Connection.scope == Scope.RUN
                    )
                )
            ).all()
        )
    for connection_id, runtime_id, lock_token in rows:
        try:
            async with ctx.db.transaction() as s:
                if not await renew(ctx, s, runtime_id, lock_token, RUN_CONNECTION_TTL_MS):
                    await _give_back(ctx, s, runtime_id, only=connection_id)
        except Conflict:
            pass  # someone else holds it for now
        except Exception:
            log.exception("run_connection_renew_failed", runtime_id=str(runtime_id))


async def rebuild_cache(ctx: AppContext) -> int:
    """Put every live controller back into the cache (after a Redis restart it is empty); returns how many."""
    now = clock.now()
    async with ctx.db.read() as s:
        rows = list((await s.execute(select(Runtime).where(Runtime.controller_kind.is_not(None)))).scalars())
    put = 0
    for runtime in rows:
        if not _live(runtime, now):
            continue
        try:
            await asyncio.wait_for(
                ctx.lock.put(str(runtime.id), token_of(runtime), _remaining_ms(runtime)), CACHE_TIMEOUT_SECONDS
            )
            put += 1
        except Exception as exc:
            log.warning("controller_cache_rebuild_failed", error=repr(exc))
            break
    return put


# --- the rules -----------------------------------------------------------------------------------


def _remaining_ms(runtime: Runtime) -> int:
    if runtime.controller_expires_at is None:
        return RUN_CONNECTION_TTL_MS
    return max(1, int((runtime.controller_expires_at - clock.now()).total_seconds() * 1000))


async def _may_take(s: AsyncSession, runtime: Runtime, current: Holder, taker: Holder) -> bool:
    """Whether `taker` may take the runtime from the live `current` holder."""
    token = token_of(runtime)
    if current.kind == "connection":
        cid = ids.parse_uuid(current.id)
        row = await s.get(Connection, cid) if cid else None
        if row is None or row.status != CS.ACTIVE or row.lock_token != token or row.run_id != runtime.active_run_id:
            return True  # it holds nothing real any more
        if row.scope == Scope.RUN and taker.kind in ("invocation", "live_view", "api"):
            # The flat API's run connection yields to work its owner asks the platform to do while no
            # client is attached to it; it takes the runtime back when that work lets go.
            return await events.attached_clients(s, row.run_id, row.id) == 0
        return False
    if current.kind == "invocation":
        row = await s.get(Command, uuid.UUID(current.id)) if len(current.id) == 32 else None
        return row is None or row.status in TERMINAL_STATUSES or row.run_id != runtime.active_run_id
    if current.kind == "live_view":
        vid = ids.parse_uuid(current.id)
        row = await s.get(Viewer, vid) if vid else None
        return row is None or row.revoked_at is not None or row.run_id != runtime.active_run_id
    # An API operation's hold lasts one call (and is renewed during a long one): it is waited for.
    return current.kind != "api"


async def _run_of_holder(s: AsyncSession, holder: Holder) -> uuid.UUID | None:
    if holder.kind == "connection":
        cid = ids.parse_uuid(holder.id)
        row = await s.get(Connection, cid) if cid else None
    elif holder.kind == "invocation":
        row = await s.get(Command, uuid.UUID(holder.id)) if len(holder.id) == 32 else None
    elif holder.kind == "live_view":
        vid = ids.parse_uuid(holder.id)
        row = await s.get(Viewer, vid) if vid else None
    else:
        row = None
    return row.run_id if row is not None else None


def _actor_of(holder: Holder) -> str:
    return "human" if holder.kind == "live_view" else "script"


def _viewer_id(hex_id: str | None) -> str | None:
    parsed = ids.parse_uuid(hex_id) if hex_id else None
    return str(parsed) if parsed else None


async def _changed(
    s: AsyncSession,
    run_id: uuid.UUID | None,
    holder: Holder | None,
    epoch: int,
    reason: str,
    previous: str | None,
    actor: str,
    viewer: str | None = None,
) -> None:
    """Record a change of controller as a run event (not the brief holds of API operations): who holds
    it now (`kind`, `id`, and `holder` in the current generation's words) and who made the change
    (`actor`: `human` (then `viewerId` names the live view), `script` or `platform`), so a replay never
    credits a person's hold to the script."""
    if run_id is None or "api" in ((holder.kind if holder else None), previous):
        return
    data = {
        "kind": holder.kind if holder else None,
        "id": holder.id if holder else None,
        "epoch": epoch,
        "reason": reason,
        "previous": previous,
        "holder": HOLDER_WORDS.get(holder.kind, "none") if holder else "none",
        "actor": actor,
    }
    if actor == "human":
        data["viewerId"] = _viewer_id(viewer or (holder.id if holder and holder.kind == "live_view" else None))
    await events.append(s, run_id, "control.changed", "control", data)


async def _give_back(
    ctx: AppContext,
    s: AsyncSession,
    runtime_id: uuid.UUID,
    only: uuid.UUID | None = None,
    previous: str | None = None,
    actor: str = "platform",
    viewer: str | None = None,
) -> bool:
    """The runtime's active flat run connection (if any) takes the runtime back, with a new epoch."""
    runtime = await _row(s, runtime_id)
    if runtime is None or runtime.active_run_id is None:
        return False
    query = select(Connection).where(
        Connection.runtime_id == runtime_id,
        Connection.run_id == runtime.active_run_id,
        Connection.scope == Scope.RUN,
        Connection.status == CS.ACTIVE,
    )
    if only is not None:
        query = query.where(Connection.id == only)
    connection = (await s.execute(query)).scalars().first()
    if connection is None:
        return False
    token = await take(
        ctx,
        s,
        runtime_id,
        Holder("connection", str(connection.id)),
        RUN_CONNECTION_TTL_MS,
        previous=previous,
        actor=actor,
        viewer=viewer,
    )
    connection.lock_token = token
    log.info("run_connection_took_back", runtime_id=str(runtime_id), connection_id=str(connection.id))
    return True

"""Runtime state transitions: launch, stop and fail, each keeping runtime, run and events consistent.

Every transition is a conditional update on the current status, so concurrent requests and
several server processes cannot both win; the browser itself is started and stopped outside
any database transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, replace

import structlog
from sqlalchemy import select, update

from app.admission import service as admission
from app.core import clock, ids, metrics
from app.core.context import AppContext
from app.core.driver import BrowserHandle, DriverError, LaunchSpec
from app.core.errors import Conflict, DomainError, NotFound, Unavailable
from app.drivers.viewport import DEFAULT_VIEWPORT
from app.runs import commands, events
from app.runs.models import Run, RunStatus
from app.runtimes import launch_extras, state
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS
from app.runtimes.schemas import BrowserConfig
from app.spaces.models import Space

log = structlog.get_logger(__name__)


@dataclass
class Started:
    runtime: Runtime
    run: Run
    started: bool


@dataclass
class Stopped:
    runtime: Runtime
    run_id: uuid.UUID | None
    stopped: bool


def runtime_not_found(runtime_id: object) -> NotFound:
    return NotFound("Runtime not found", code="runtime.not_found", details={"runtimeId": str(runtime_id)})


def runtime_not_active(runtime_id: object, status: str | None = None, message: str | None = None) -> Conflict:
    """409 `runtime.not_active`, built here only; `message` may say what to do about it."""
    details = {"runtimeId": str(runtime_id)} | ({"status": status} if status is not None else {})
    return Conflict(
        message or (f"Runtime is {status}, not active" if status else "The runtime is not active"),
        code="runtime.not_active",
        details=details,
    )


def _transitioning(runtime: Runtime) -> Conflict:
    return Conflict(
        f"Runtime is {runtime.status}; retry when it settles",
        code="runtime.transitioning",
        details={"runtimeId": str(runtime.id), "status": runtime.status},
        headers={"Retry-After": "1"},
    )


async def launch(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    *,
    recording: bool | None = None,
    on_admitted: asyncio.Event | None = None,
    wait: float = 0,
) -> Started:
    """Start the runtime's browser and open a run. Starting an active runtime returns its current run.
    `on_admitted` is set once the run exists (capacity granted), before the browser is started. With
    `wait`, a start refused for a slot waits in the admission queue up to that many seconds."""

    def attempt(ticket: uuid.UUID | None) -> asyncio.Future[Started]:
        # Shielded: a client that hangs up mid-launch must not leave the runtime half-started.
        return asyncio.shield(asyncio.ensure_future(_launch(ctx, runtime_id, recording, on_admitted, ticket)))

    # Not shielded: a start still waiting for a slot is given up with its caller.
    return await admission.queued(ctx, runtime_id, wait, attempt)


async def _launch(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    recording: bool | None,
    on_admitted: asyncio.Event | None,
    ticket: uuid.UUID | None = None,
) -> Started:
    settings = ctx.settings
    async with ctx.capacity_lock, ctx.db.transaction() as s:
        # Lock order, the same everywhere: space (shared; deleting it takes it exclusively), runtime, capacity.
        space_id = (await s.execute(select(Runtime.space_id).where(Runtime.id == runtime_id))).scalar_one()
        await s.execute(select(Space.id).where(Space.id == space_id).with_for_update(read=True))
        runtime = (await s.execute(select(Runtime).where(Runtime.id == runtime_id).with_for_update())).scalar_one()
        if runtime.deleted_at is not None:
            raise runtime_not_found(runtime_id)
        if runtime.status == RS.ACTIVE and runtime.active_run_id:
            return Started(runtime, await s.get(Run, runtime.active_run_id), started=False)
        if runtime.status not in RS.STARTABLE:
            raise _transitioning(runtime)
        # Slots, quotas and caps, in queue order (429 when refused); a running browser never gets here.
        await admission.admit(ctx, s, runtime, ticket)
        now = clock.now()
        if recording is not None:
            runtime.recording = recording
        run = Run(
            id=ids.new_id(),
            account_id=runtime.account_id,
            space_id=runtime.space_id,
            runtime_id=runtime.id,
            runtime_type=runtime.type,
            status=RunStatus.ACTIVE,
            recording=runtime.recording,
            failure=None,
            event_seq=0,
            created_at=now,
            started_at=now,
        )
        s.add(run)
        await s.flush()
        runtime.status, runtime.active_run_id, runtime.failure = RS.STARTING, run.id, None
        runtime.status_changed_at = runtime.updated_at = now
        await events.append(s, run.id, "runtime.starting", "runtime", {"driver": ctx.driver.name})

    if on_admitted is not None:
        on_admitted.set()
    config = BrowserConfig.model_validate(runtime.config or {})
    saved = await state.fetch(ctx, runtime)
    spec = LaunchSpec(
        runtime_id=runtime.id,
        run_id=run.id,
        # The page's viewport (what window.innerWidth/innerHeight report): the one asked, else the default.
        viewport=config.window_size() or DEFAULT_VIEWPORT,
        locale=config.locale,
        restore_from=saved,
    )

    async def remember(found: dict) -> None:
        # Recorded while still `starting`, so a sweep can stop this browser if this process dies now.
        async with ctx.db.transaction() as s:
            await s.execute(
                update(Runtime)
                .where(Runtime.id == runtime.id, Runtime.status == RS.STARTING, Runtime.active_run_id == run.id)
                .values(driver_state=found)
            )

    try:
        # Inside the try: a setting that cannot be honoured any more (a deleted proxy) fails the run.
        spec = replace(spec, **await launch_extras.resolve(ctx, runtime))
        handle = await ctx.driver.launch(spec, settings.launch_timeout_seconds, remember)
        await state.restored(ctx, runtime.id, handle.state_warning)
        if handle.state_warning:
            ctx.events.emit(run.id, "runtime.state_restore_failed", "runtime", {"message": handle.state_warning})
    except DriverError as exc:
        metrics.browser_start_failed(ctx.driver.name, runtime.launch_options)
        await fail(ctx, runtime.id, run.id, exc.code, exc.message)
        raise Unavailable(
            exc.message, code=exc.code, details={"runtimeId": str(runtime.id), "runId": str(run.id)}
        ) from None
    except BaseException as exc:
        metrics.browser_start_failed(ctx.driver.name, runtime.launch_options)
        await fail(ctx, runtime.id, run.id, "runtime.launch_failed", f"Launch failed: {exc!r}")
        raise
    finally:
        state.discard_file(saved)
    try:
        return await _mark_active(ctx, runtime.id, run, handle)
    except Unavailable:
        raise
    except BaseException as exc:
        await ctx.driver.stop(handle.state)
        await fail(ctx, runtime.id, run.id, "runtime.launch_failed", f"Launch failed: {exc!r}")
        raise


async def _mark_active(ctx: AppContext, runtime_id: uuid.UUID, run: Run, handle: BrowserHandle) -> Started:
    async with ctx.db.transaction() as s:
        now = clock.now()
        result = await s.execute(
            update(Runtime)
            .where(Runtime.id == runtime_id, Runtime.status == RS.STARTING, Runtime.active_run_id == run.id)
            .values(
                status=RS.ACTIVE,
                driver_state={**handle.state, "httpUrl": handle.http_url, "wsUrl": handle.ws_url},
                status_changed_at=now,
                updated_at=now,
            )
        )
        if result.rowcount == 1:
            await events.append(s, run.id, "runtime.active", "runtime", {"driver": ctx.driver.name})
            await commands.record(
                s,
                run.id,
                "runtime.start",
                request={"recording": run.recording},
                result={"runId": str(run.id), "status": RS.ACTIVE},
                started_at=run.started_at,
            )
    if result.rowcount != 1:
        # Failed or swept while the browser was starting: do not leave that browser behind.
        await ctx.driver.stop(handle.state)
        raise Unavailable(
            "Runtime ended while its browser was starting",
            code="runtime.host_unavailable",
            details={"runtimeId": str(runtime_id), "runId": str(run.id)},
        )
    async with ctx.db.transaction() as s:
        started = Started(await s.get(Runtime, runtime_id), await s.get(Run, run.id), started=True)
    metrics.browser_started(ctx.driver.name, started.runtime.launch_options, clock.now() - run.started_at)
    # Last: the observer and recorder it starts then compete with nothing on the way to the response.
    if ctx.supervisor:
        ctx.supervisor.watch(runtime_id, run.id, handle.state)
        # Watchers that must be in place first (network rules armed on the first page) are, bounded.
        await ctx.supervisor.settle(runtime_id)
    return started


async def stop(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    reason: str = "stop requested",
    run_id: uuid.UUID | None = None,
    *,
    end_reason: str = "stopped",
    discard_state: bool = False,
    on_accepted: asyncio.Event | None = None,
) -> Stopped:
    """Stop the browser and close the run as completed. Stopping a stopped runtime is a no-op.
    The browser's profile is kept as the runtime's saved state unless `discard_state`. `on_accepted` is
    set once the runtime is `stopping` (or found stopped)."""
    stopping = _stop(ctx, runtime_id, reason, run_id, end_reason, discard_state, on_accepted)
    return await asyncio.shield(asyncio.ensure_future(stopping))


async def stop_all(ctx: AppContext, account_id: uuid.UUID, reason: str) -> None:
    """Stop every browser of the account that holds one, side by side; one that cannot be stopped (gone
    meanwhile, ...) is logged and the others are still stopped. A repeat finds only what is left."""
    async with ctx.db.read() as s:
        live = list(
            (
                await s.execute(select(Runtime.id).where(Runtime.account_id == account_id, Runtime.status.in_(RS.LIVE)))
            ).scalars()
        )

    async def stop_one(runtime_id: uuid.UUID) -> None:
        try:
            await stop(ctx, runtime_id, reason, end_reason="stopped")
        except DomainError as error:
            log.warning("stop_all_failed", runtime_id=str(runtime_id), code=error.code)

    await asyncio.gather(*(stop_one(r) for r in live))


async def _stop(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    reason: str,
    only_run: uuid.UUID | None,
    end_reason: str,
    discard_state: bool,
    on_accepted: asyncio.Event | None,
) -> Stopped:
    """`only_run`: stop only if that run is still the current one (a decision taken about that run)."""
    deadline = asyncio.get_running_loop().time() + ctx.settings.stop_timeout_seconds * 3
    while True:
        async with ctx.db.transaction() as s:
            runtime = (await s.execute(select(Runtime).where(Runtime.id == runtime_id).with_for_update())).scalar_one()
            if runtime.status in RS.STARTABLE or (only_run is not None and runtime.active_run_id != only_run):
                return Stopped(runtime, None, stopped=False)
            if runtime.status == RS.ACTIVE:
                run_id, driver_state = runtime.active_run_id, runtime.driver_state or {}
                keep = runtime.keep_state and not discard_state
                now = clock.now()
                runtime.status, runtime.status_changed_at, runtime.updated_at = RS.STOPPING, now, now
                break
            if runtime.status == RS.STARTING:
                raise _transitioning(runtime)
        # Another request is stopping it: wait for that to finish rather than racing it.
        if asyncio.get_running_loop().time() > deadline:
            raise _transitioning(runtime)
        await asyncio.sleep(0.1)
    if on_accepted is not None:
        on_accepted.set()

    stop_started = clock.now()
    if ctx.supervisor:
        # Downloads still being copied out of the browser finish before it goes (bounded).
        await ctx.supervisor.unwatch(runtime_id).wait_observer(timeout=15)
    await _run_end_hooks(ctx, runtime_id, run_id)
    try:
        await state.stop_and_save(ctx, runtime_id, driver_state, keep=keep)
    except Exception:
        log.exception("driver_stop_failed", runtime_id=str(runtime_id))
    async with ctx.db.transaction() as s:
        now = clock.now()
        await s.execute(
            update(Runtime)
            .where(Runtime.id == runtime_id, Runtime.status == RS.STOPPING)
            .values(
                status=RS.STOPPED,
                active_run_id=None,
                driver_state=None,
                status_changed_at=now,
                updated_at=now,
                last_used_at=now,
            )
        )
        if run_id:
            await s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.ACTIVE)
                .values(status=RunStatus.COMPLETED, finished_at=now, end_reason=end_reason)
            )
            await events.append(s, run_id, "runtime.stopped", "runtime", {"reason": reason})
            await commands.record(
                s, run_id, "runtime.stop", request={}, result={"status": RS.STOPPED}, started_at=stop_started
            )
        runtime = await s.get(Runtime, runtime_id)
    return Stopped(runtime, run_id, stopped=True)


async def fail(
    ctx: AppContext,
    runtime_id: uuid.UUID,
    run_id: uuid.UUID,
    code: str,
    message: str,
    from_statuses: tuple[str, ...] = (RS.STARTING, RS.ACTIVE),
) -> bool:
    """Mark the run and runtime failed if that run is still the runtime's current one; clean up the browser.

    A browser that exits while its runtime is `stopping` was stopped on purpose, so by default
    that status is left to the stop that is under way.
    """
    failure = {"code": code, "message": message}
    async with ctx.db.transaction() as s:
        runtime = (
            await s.execute(select(Runtime).where(Runtime.id == runtime_id).with_for_update())
        ).scalar_one_or_none()
        if runtime is None or runtime.active_run_id != run_id or runtime.status not in from_statuses:
            return False
        driver_state, prior = runtime.driver_state or {}, runtime.status
        now = clock.now()
        runtime.status, runtime.active_run_id, runtime.driver_state = RS.FAILED, None, None
        runtime.failure, runtime.status_changed_at, runtime.updated_at = failure, now, now
        await s.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.ACTIVE)
            .values(status=RunStatus.FAILED, failure=failure, finished_at=now, end_reason=code[:64])
        )
        await events.append(s, run_id, "runtime.failed", "runtime", failure)
        if prior == RS.STARTING:
            await commands.record(s, run_id, "runtime.start", request={}, error=failure)
    log.warning("runtime_failed", runtime_id=str(runtime_id), run_id=str(run_id), code=code, message=message)
    if ctx.supervisor:
        ctx.supervisor.unwatch(runtime_id)
    await _run_end_hooks(ctx, runtime_id, run_id)
    with contextlib.suppress(Exception):
        await ctx.driver.stop(driver_state)
    return True


async def _run_end_hooks(ctx: AppContext, runtime_id: uuid.UUID, run_id: uuid.UUID | None) -> None:
    if run_id is None:
        return
    for hook in ctx.run_end_hooks:
        try:
            await hook(runtime_id, run_id)
        except Exception:
            log.exception("run_end_hook_failed", runtime_id=str(runtime_id))

"""Watches browsers and repairs runtime state: no runtime left `starting` forever, no dead browser `active`.

- `watch` follows one browser; when it ends without a stop, its run fails within a moment.
- `sweep` (at start and then periodically) adopts live browsers of this host that no process
  watches, fails active runtimes whose browser is gone, and fails runtimes stuck in a transition.
- `shutdown` stops the browsers this process watches, so a server stop leaves no Chromium behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol

import structlog
from sqlalchemy import select, update

from app.core import clock
from app.core.context import AppContext
from app.runs import events
from app.runs.models import RunEvent
from app.runtimes import lifecycle, processes
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS

log = structlog.get_logger(__name__)


class RunWatcher(Protocol):
    """Something that follows a run's browser while it lives (the observer, the recorder), registered
    with the supervisor by the assembly (app/lifespan.py) rather than named by it."""

    # Whether the run's end waits for this watcher to stop before the browser goes (captures in flight).
    awaited: bool

    def start(self) -> None: ...

    def stop(self, run_ended: bool) -> Awaitable[None]:
        """`run_ended` false: the browser lives on, another process adopts it."""


# Builds a run's watcher from (ctx, runtime id, run id, browser state), or None when it has nothing to watch.
WatcherFactory = Callable[[AppContext, uuid.UUID, uuid.UUID, dict], RunWatcher | None]
# A job of every sweep (purging old events, finishing abandoned recordings, recovering invocations).
Upkeep = Callable[[], Awaitable[object]]


class Unwatched:
    def __init__(self, awaited: list[asyncio.Future]) -> None:
        self.awaited = awaited

    async def wait_observer(self, timeout: float) -> None:
        """Wait (bounded) for the watchers whose work must finish before the browser is removed."""
        if self.awaited:
            await asyncio.wait(self.awaited, timeout=timeout)


class Supervisor:
    def __init__(self, ctx: AppContext, watchers: Sequence[WatcherFactory] = (), upkeep: Sequence[Upkeep] = ()) -> None:
        self.ctx = ctx
        self.watchers = list(watchers)
        self.upkeep = list(upkeep)
        self._watches: dict[uuid.UUID, asyncio.Task] = {}
        self._watchers: dict[uuid.UUID, list[RunWatcher]] = {}
        self._stopping: set[asyncio.Future] = set()
        self._sweeper: asyncio.Task | None = None

    def watch(self, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict) -> None:
        """Follow the browser until it ends, and observe its run (the process that watches observes)."""
        self.unwatch(runtime_id)
        self._watches[runtime_id] = asyncio.create_task(
            self._follow(runtime_id, run_id, state), name=f"watch-{runtime_id}"
        )
        started = []
        for factory in self.watchers:
            watcher = factory(self.ctx, runtime_id, run_id, state)
            if watcher is not None:
                watcher.start()
                started.append(watcher)
        self._watchers[runtime_id] = started

    def unwatch(self, runtime_id: uuid.UUID, run_ended: bool = True) -> Unwatched:
        """Stop following a browser; `run_ended` false means it lives on (another process will adopt it)."""
        task = self._watches.pop(runtime_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        awaited = []
        for watcher in self._watchers.pop(runtime_id, []):
            # Stopped in the background (a recording becomes a video); the run's end waits only for `awaited`.
            stopping = asyncio.ensure_future(watcher.stop(run_ended))
            self._keep(stopping)
            if watcher.awaited:
                awaited.append(stopping)
        return Unwatched(awaited)

    def _keep(self, task: asyncio.Future) -> None:
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def watching(self, runtime_id: uuid.UUID) -> bool:
        return runtime_id in self._watches

    async def _follow(self, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict) -> None:
        try:
            how = await self.ctx.driver.wait_exit(state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            how = f"lost track of the browser: {exc!r}"
        try:
            # Still registered as watched while failing, so a concurrent sweep leaves this runtime alone.
            await lifecycle.fail(self.ctx, runtime_id, run_id, "runtime.browser_exited", how)
        finally:
            if self._watches.get(runtime_id) is asyncio.current_task():
                # The run ended some other way (another process stopped it): drop the watch and observer.
                self.unwatch(runtime_id)

    async def start(self) -> None:
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="runtime-sweeper")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.sweep_interval_seconds)
            try:
                await self.sweep()
                await self.stop_idle()
            except Exception:
                log.exception("sweep_failed")
            for job in self.upkeep:
                try:
                    await job()
                except Exception:
                    log.exception("upkeep_failed", job=getattr(job, "__name__", repr(job)))

    async def sweep(self) -> None:
        settings, driver = self.ctx.settings, self.ctx.driver
        stuck_after = timedelta(seconds=settings.launch_timeout_seconds + settings.stop_timeout_seconds * 3 + 5)
        async with self.ctx.db.read() as s:
            rows = list(
                (
                    await s.execute(select(Runtime).where(Runtime.status.in_(RS.LIVE), Runtime.driver == driver.name))
                ).scalars()
            )
        now = clock.now()
        for rt in rows:
            if rt.active_run_id is None or self.watching(rt.id):
                continue
            state = rt.driver_state or {}
            if rt.status == RS.ACTIVE:
                if await driver.is_alive(state):
                    if not await driver.has_owner(state):
                        # Its server process died: this one looks after the browser from now on.
                        await self._adopt(rt.id, rt.active_run_id, state)
                elif await self._owned_here(state):
                    await lifecycle.fail(
                        self.ctx, rt.id, rt.active_run_id, "runtime.browser_exited", "The browser is no longer running"
                    )
            elif now - rt.status_changed_at > stuck_after or await self._launcher_gone(rt.status, state):
                await lifecycle.fail(
                    self.ctx,
                    rt.id,
                    rt.active_run_id,
                    "runtime.transition_timeout",
                    f"Runtime was stuck '{rt.status}'; its server process probably died",
                    from_statuses=RS.LIVE,
                )

        # Sockets attached through a server that died never wrote their detach: written here.
        await processes.detach_dead_sockets(self.ctx)
        await self._remove_orphans()

    async def _adopt(self, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict) -> None:
        previous_owner = state.get("serverInstance")
        state = self.ctx.driver.adopted_state(state)
        async with self.ctx.db.transaction() as s:
            # Named as the owner, so other processes (and this one's successor) judge ownership by us;
            # only if the owner is still the dead one, so two processes sweeping at once cannot both adopt.
            result = await s.execute(
                update(Runtime)
                .where(
                    Runtime.id == runtime_id,
                    Runtime.status == RS.ACTIVE,
                    Runtime.active_run_id == run_id,
                    Runtime.driver_state["serverInstance"].as_string() == previous_owner,
                )
                .values(driver_state=state)
            )
        if result.rowcount == 1:
            await self._serve_its_proxy(runtime_id, state)
            self.watch(runtime_id, run_id, state)
            log.info("runtime_adopted", runtime_id=str(runtime_id))

    async def _serve_its_proxy(self, runtime_id: uuid.UUID, state: dict) -> None:
        """An adopted browser keeps the proxy address it was started with (another port when the earlier
        server could not reuse its own): listen there too, or it could reach nothing."""
        url, serve = state.get("proxyUrl"), self.ctx.driver.serve_proxy
        if url and serve is not None and url != self.ctx.driver.proxy_url:
            try:
                await serve(url)
            except OSError:
                log.warning("adopted_browser_proxy_unavailable", runtime_id=str(runtime_id), proxy=url, exc_info=True)

    async def _launcher_gone(self, status: str, state: dict) -> bool:
        """A launch whose server process died: no need to wait out the transition timeout."""
        driver = self.ctx.driver
        return (
            status == RS.STARTING
            and bool(state.get("serverInstance"))
            and state.get("serverInstance") != getattr(driver, "instance", None)
            and await self._owned_here(state)
            and not await driver.has_owner(state)
        )

    async def _remove_orphans(self) -> None:
        """Remove browsers the driver can see whose runtime is no longer live (or was relaunched since)."""
        # Listed before the rows are read: a browser launched meanwhile finds its runtime `starting`.
        found = await self.ctx.driver.list_browsers()
        if not found:
            return
        async with self.ctx.db.read() as s:
            rows = {
                rt.id: rt
                for rt in (
                    await s.execute(select(Runtime).where(Runtime.id.in_({b.runtime_id for b in found})))
                ).scalars()
            }
        for browser in found:
            rt = rows.get(browser.runtime_id)
            known = self.ctx.driver.browser_id(rt.driver_state or {}) if rt else None
            if rt is not None and rt.status in RS.LIVE and known in (None, browser.browser_id):
                continue
            log.info("orphan_browser_removed", runtime_id=str(browser.runtime_id), **browser.state)
            try:
                await self.ctx.driver.stop(browser.state)
            except Exception:
                log.exception("orphan_remove_failed", runtime_id=str(browser.runtime_id))

    async def stop_idle(self) -> None:
        """Stop runtimes with an idle timeout whose run has had no client attached and no event for that long."""
        # Only the process that watches a runtime judges it, so processes never race to stop it.
        watched = list(self._watches)
        if not watched:
            return
        async with self.ctx.db.read() as s:
            rows = (
                await s.execute(
                    select(Runtime.id, Runtime.active_run_id, Runtime.idle_timeout_seconds).where(
                        Runtime.id.in_(watched), Runtime.status == RS.ACTIVE, Runtime.idle_timeout_seconds.is_not(None)
                    )
                )
            ).all()
        now = clock.now()
        for runtime_id, run_id, idle_seconds in rows:
            try:
                async with self.ctx.db.transaction() as s:
                    last = (
                        await s.execute(
                            select(RunEvent.time)
                            .where(RunEvent.run_id == run_id)
                            .order_by(RunEvent.seq.desc())
                            .limit(1)
                        )
                    ).scalar_one_or_none()
                    opened = await events.attached_clients(s, run_id)
                if opened == 0 and last is not None and (now - last).total_seconds() > idle_seconds:
                    log.info("runtime_idle_stop", runtime_id=str(runtime_id), idle_seconds=idle_seconds)
                    await lifecycle.stop(
                        self.ctx,
                        runtime_id,
                        reason=f"idle for {idle_seconds} s",
                        run_id=run_id,
                        end_reason="idle_timeout",
                    )
            except Exception:
                log.exception("idle_check_failed", runtime_id=str(runtime_id))

    async def _owned_here(self, state: dict) -> bool:
        # A browser on another host is that host's business; the local driver tags its state with the host.
        host = state.get("host")
        return host is None or host == getattr(self.ctx.driver, "hostname", host)

    async def shutdown(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.ctx.driver.browsers_outlive_server:
            for runtime_id in list(self._watches):
                self.unwatch(runtime_id, run_ended=False)
            await self._drain()
            return
        watched = list(self._watches)
        async with self.ctx.db.read() as s:
            rows = list((await s.execute(select(Runtime).where(Runtime.id.in_(watched)))).scalars()) if watched else []
        for task in list(self._watches.values()):
            task.cancel()
        self._watches.clear()
        for rt in rows:
            if rt.active_run_id is not None:
                await lifecycle.fail(
                    self.ctx,
                    rt.id,
                    rt.active_run_id,
                    "runtime.host_shutdown",
                    "The server shut down while the browser was running",
                )
        await self._drain()

    async def _drain(self) -> None:
        """Let observers and recorders finish (a recording being encoded gets up to a minute)."""
        if self._stopping:
            await asyncio.wait(list(self._stopping), timeout=60)

"""Watches browsers and repairs runtime state: no runtime left `starting` forever, no dead browser `active`.

- `watch` follows one browser; when it ends without a stop, its run fails within a moment.
- `sweep` (at start and then periodically) adopts live browsers whose owner died (its lease ran out,
  app/runtimes/processes.py), fails active runtimes whose browser is gone, and fails runtimes stuck in
  a transition. `take_over` does the adopting part alone, at every renewal of this process's lease.
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
from sqlalchemy import case, func, select, update

from app.core import background, clock
from app.core.context import AppContext
from app.core.driver import DriverError
from app.runs import events
from app.runs.models import RunEvent
from app.runtimes import launch_extras, lifecycle, processes
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS

log = structlog.get_logger(__name__)
# Controller holders that are at work in the browser (a CDP lease holds it too, but its sockets count).
_BUSY_HOLDERS = ("invocation", "live_view", "api")


async def _open_viewers(s, run_id: uuid.UUID) -> int:
    """Live viewers watching the run now (its live.opened / live.closed events)."""
    balance = func.sum(case((RunEvent.type == "live.opened", 1), (RunEvent.type == "live.closed", -1), else_=0))
    found = await s.execute(select(balance).where(RunEvent.run_id == run_id, RunEvent.category == "live"))
    return max(0, found.scalar() or 0)


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


def _owner(rt: Runtime) -> str | None:
    """The server instance that owns the runtime's browser and run (the driver state names it)."""
    return (rt.driver_state or {}).get("serverInstance")


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
        # Runs this process let go of while it could not renew its lease: followed again once it can, if
        # nobody took them over meanwhile (its other unwatched runs are being launched or stopped here).
        self._let_go: set[uuid.UUID] = set()

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

    async def settle(self, runtime_id: uuid.UUID, timeout: float = 5.0) -> None:
        """Wait (bounded) for the run's watchers that must be in place before it is reported active (a
        watcher's `settled` event: the observer's, when network rules must hold from the first page)."""
        events = [w.settled for w in self._watchers.get(runtime_id, []) if getattr(w, "settled", None) is not None]
        if events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)

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
        settings = self.ctx.settings
        stuck_after = timedelta(seconds=settings.launch_timeout_seconds + settings.stop_timeout_seconds * 3 + 5)
        rows = await self._unwatched_live()
        gone = await processes.dead(self.ctx, {_owner(rt) for rt in rows if _owner(rt)})
        now = clock.now()
        for rt in rows:
            if rt.status == RS.ACTIVE:
                await self._look_after(rt, gone)
            elif now - rt.status_changed_at > stuck_after or await self._launcher_gone(rt, gone):
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

    async def take_over(self) -> None:
        """Look after the active runs whose owner's lease ran out (or this process's own, no longer
        watched): called at every renewal of this process's lease, so a run is taken over within
        seconds of its owner's death rather than at the next sweep."""
        rows = [rt for rt in await self._unwatched_live() if rt.status == RS.ACTIVE]
        if rows:
            gone = await processes.dead(self.ctx, {_owner(rt) for rt in rows if _owner(rt)})
            for rt in rows:
                await self._look_after(rt, gone)

    async def let_go_of_lost(self, everything: bool = False) -> None:
        """Stop following the runs another process owns now (it took them over while this one could not
        renew its lease), or, with `everything`, all of them: two owners would record every event twice."""
        watched = list(self._watches)
        if not watched:
            return
        if everything:
            lost = watched
        else:
            async with self.ctx.db.read() as s:
                rows = (await s.execute(select(Runtime.id, Runtime.driver_state).where(Runtime.id.in_(watched)))).all()
            lost = [
                rid
                for rid, state in rows
                if (state or {}).get("serverInstance") not in (None, self.ctx.driver.instance)
            ]
        for runtime_id in lost:
            log.warning("run_ownership_lost", runtime_id=str(runtime_id))
            self.unwatch(runtime_id, run_ended=False)
            if everything:
                self._let_go.add(runtime_id)

    async def _unwatched_live(self) -> list[Runtime]:
        async with self.ctx.db.read() as s:
            rows = (
                await s.execute(
                    select(Runtime).where(Runtime.status.in_(RS.LIVE), Runtime.driver == self.ctx.driver.name)
                )
            ).scalars()
            return [rt for rt in rows if rt.active_run_id is not None and not self.watching(rt.id)]

    async def _look_after(self, rt: Runtime, gone: set[str]) -> None:
        """An active runtime nobody here follows: this process's own is followed again; one whose owner
        is dead is adopted if its browser lives, failed if not. Another live owner's is left alone."""
        state, owner = rt.driver_state or {}, _owner(rt)
        if owner == self.ctx.driver.instance:
            if rt.id not in self._let_go:
                return  # being launched or stopped by this process right now
            self._let_go.discard(rt.id)
        elif owner is not None and owner not in gone:
            return
        if await self.ctx.driver.is_alive(state):
            await self._adopt(rt.id, rt.active_run_id, state)
        elif await self._owned_here(state):
            await lifecycle.fail(
                self.ctx, rt.id, rt.active_run_id, "runtime.browser_exited", "The browser is no longer running"
            )

    async def _adopt(self, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict) -> None:
        previous_owner, me = state.get("serverInstance"), self.ctx.driver.instance
        state = {**state, "serverInstance": me}
        async with self.ctx.db.transaction() as s:
            # Named as the owner, so other processes judge this run's ownership by this one's lease; only
            # if the owner is still the dead one, so two processes taking it over at once cannot both win.
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
            if result.rowcount == 1 and previous_owner != me:
                await events.append(
                    s,
                    run_id,
                    "runtime.adopted",
                    "lifecycle",
                    {"from": previous_owner, "to": me},
                    source="control-plane",
                )
        if result.rowcount == 1:
            await self._serve_its_proxy(runtime_id, state)
            self.watch(runtime_id, run_id, state)
            log.info("runtime_adopted", runtime_id=str(runtime_id), previous_owner=previous_owner)

    async def _serve_its_proxy(self, runtime_id: uuid.UUID, state: dict) -> None:
        """An adopted browser keeps the proxy address it was started with (another port when the earlier
        server could not reuse its own): listen there too, or it could reach nothing. A browser with a
        proxy of its own gets its entrance back, chaining to its upstream again (never a plain proxy:
        its traffic must not leave straight from this host)."""
        if state.get("proxyEntrance"):
            await self._restore_entrance(runtime_id, state["proxyEntrance"])
            return
        url, serve = state.get("proxyUrl"), self.ctx.driver.serve_proxy
        if url and serve is not None and url != self.ctx.driver.proxy_url:
            try:
                await serve(url)
            except OSError:
                log.warning("adopted_browser_proxy_unavailable", runtime_id=str(runtime_id), proxy=url, exc_info=True)

    async def _restore_entrance(self, runtime_id: uuid.UUID, entrance: str) -> None:
        reopen = getattr(self.ctx.driver, "proxy_entrance", None)
        try:
            async with self.ctx.db.read() as s:
                runtime = await s.get(Runtime, runtime_id)
            upstream = await launch_extras.proxy_upstream(self.ctx, runtime) if runtime is not None else None
            if upstream is None or reopen is None:
                raise ValueError("the browser's proxy setting is gone")
            await reopen(upstream, restore=entrance)
        except (DriverError, OSError, ValueError):
            # It stays held and refusing (app/egress/proxy.py): the browser reaches nothing, never the web.
            log.warning("adopted_browser_entrance_unavailable", runtime_id=str(runtime_id), exc_info=True)

    async def _launcher_gone(self, rt: Runtime, gone: set[str]) -> bool:
        """A launch whose server process died: no need to wait out the transition timeout."""
        return rt.status == RS.STARTING and _owner(rt) in gone and await self._owned_here(rt.driver_state or {})

    async def _remove_orphans(self) -> None:
        """Remove browsers the driver can see whose runtime is no longer live (or was relaunched since)."""
        # Listed before the rows are read: a browser launched meanwhile finds its runtime `starting`.
        try:
            found = await self.ctx.driver.list_browsers()
        except DriverError as exc:
            # The host cannot list now (a swarm engine that is no manager yet): /readyz says so; next sweep.
            log.warning("orphan_listing_failed", error=exc.message)
            return
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
        """Stop runtimes with an idle timeout (capped by BCTRL_IDLE_TIMEOUT_MAX_SECONDS) whose run has had,
        for that long, no CDP client or live viewer attached, no task or API operation holding it, and no
        event of a client: what the page does by itself (console lines, its own requests) keeps no
        forgotten browser alive."""
        # Only the process that watches a runtime judges it, so processes never race to stop it.
        watched = list(self._watches)
        if not watched:
            return
        cap = self.ctx.settings.idle_timeout_max_seconds
        async with self.ctx.db.read() as s:
            query = select(
                Runtime.id,
                Runtime.active_run_id,
                Runtime.idle_timeout_seconds,
                Runtime.controller_kind,
                Runtime.controller_expires_at,
            ).where(Runtime.id.in_(watched), Runtime.status == RS.ACTIVE)
            if cap is None:
                query = query.where(Runtime.idle_timeout_seconds.is_not(None))
            rows = (await s.execute(query)).all()
        now = clock.now()
        for runtime_id, run_id, idle_seconds, holder, held_until in rows:
            idle_seconds = min(idle_seconds or cap, cap or idle_seconds)
            if holder in _BUSY_HOLDERS and held_until is not None and held_until > now:
                continue  # a task, a human at the live view or an API operation is at work
            try:
                async with self.ctx.db.transaction() as s:
                    last = (
                        await s.execute(
                            select(RunEvent.time)
                            .where(RunEvent.run_id == run_id, RunEvent.source != "browser")
                            .order_by(RunEvent.seq.desc())
                            .limit(1)
                        )
                    ).scalar_one_or_none()
                    opened = await events.attached_clients(s, run_id) + await _open_viewers(s, run_id)
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
        await background.stop(self._sweeper)
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

"""The warm pool: a driver wrapper that keeps `size` browsers launched ahead and hands one to a launch of
the default configuration (app/pool/matching.py) instead of starting a cold one.

Isolation is the cold path's: a pool browser is launched by the wrapped driver itself, under a pool
id of its own, so it runs as a uid of its own with a profile of its own, in its own mount namespace
with the managed policy, through the same egress proxy. At the claim what the driver applies after
the start is re-pointed at the runtime (its run's download directory, its file area, handed to the
browser's uid, and its network rules); anything fixed at the start must match or the launch is cold.
A pool browser is used once: it carries nothing from a previous user because it never had one, and
its stop ends it like any other (it never goes back to the pool).

Pool browsers are not runtimes: no row, no tenant, no list shows them. `size()` says how many are
up or starting, for the capacity signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from app.core import background, metrics
from app.core.driver import BrowserHandle, DriverError, LaunchSpec, ManagedBrowser, StateCallback
from app.drivers.local import browser_uid
from app.drivers.viewport import DEFAULT_VIEWPORT
from app.pool import handover, markers
from app.pool.matching import class_of

log = structlog.get_logger(__name__)

# Longest pause between failed refills (a Chromium that cannot start is not retried in a tight loop).
_MAX_BACKOFF = 60.0


@dataclass
class Warm:
    pool_id: uuid.UUID
    handle: BrowserHandle
    born: float  # time.monotonic() once it answered


class PooledDriver:
    """Everything not defined here is the wrapped driver's (attributes are read and set through)."""

    _OWN = frozenset(
        {"inner", "pool_size", "fill_per_second", "max_age", "launch_timeout", "_idle", "_launching",
         "_stopping", "_filler", "_wake", "_closing", "claimed", "launched", "recycled"}
    )  # fmt: skip

    def __init__(self, inner: Any, size: int, fill_per_second: float, max_age: float, launch_timeout: float) -> None:
        self.inner = inner
        self.pool_size = size
        self.fill_per_second = fill_per_second
        self.max_age = max_age
        self.launch_timeout = launch_timeout
        self._idle: list[Warm] = []
        self._launching: set[asyncio.Task] = set()
        self._stopping: set[asyncio.Task] = set()
        self._filler: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closing = False
        # Counted for tests and the bench: browsers handed to a launch, started ahead, ended unclaimed.
        self.claimed = self.launched = self.recycled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # The egress service and others set attributes on "the driver": they belong to the wrapped one.
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    # --- what the capacity signal and tests read ---

    def size(self) -> int:
        """Pool browsers up or starting on this host (they use its CPU and memory, but no slot)."""
        return len(self._idle) + len(self._launching)

    def counts(self) -> dict[str, int]:
        """Pool browsers by state, for the metrics."""
        return {"ready": len(self._idle), "starting": len(self._launching)}

    def pids(self) -> set[int]:
        return {w.handle.state["pid"] for w in self._idle if w.handle.state.get("pid")}

    # --- the pool ---

    def start(self) -> None:
        if self.pool_size > 0 and self._filler is None:
            self._filler = asyncio.create_task(self._fill_forever(), name="warm-pool")

    async def _fill_forever(self) -> None:
        failures = 0
        while not self._closing:
            self._recycle_old()
            if len(self._idle) + len(self._launching) >= self.pool_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_expiry())
                continue
            began = time.monotonic()
            task = asyncio.ensure_future(self._launch_one())
            self._launching.add(task)
            task.add_done_callback(self._launching.discard)
            # Shielded: stopping the filler must not interrupt a launch half-way (it cleans up itself).
            ok = await asyncio.shield(task)
            failures = 0 if ok else failures + 1
            pause = 1.0 / self.fill_per_second - (time.monotonic() - began)
            if failures:
                pause = max(pause, min(_MAX_BACKOFF, 2.0**failures))
            if pause > 0:
                await asyncio.sleep(pause)

    def _next_expiry(self) -> float:
        if not self._idle:
            return 1.0
        oldest = min(w.born for w in self._idle)
        return max(0.05, oldest + self.max_age - time.monotonic())

    async def _launch_one(self) -> bool:
        pool_id = uuid.uuid4()
        note = {
            "poolId": str(pool_id),
            "serverPid": os.getpid(),
            "serverInstance": getattr(self.inner, "instance", None),
            "runtimeId": None,
        }

        async def noted(state: dict) -> None:
            # Before the process exists: a sweep never takes a pool browser for an orphan.
            await asyncio.to_thread(markers.write, state["profileDir"], note)

        spec = LaunchSpec(runtime_id=pool_id, viewport=DEFAULT_VIEWPORT)
        try:
            handle = await self.inner.launch(spec, self.launch_timeout, noted)
        except DriverError as exc:
            log.warning("pool_launch_failed", error=exc.message)
            return False
        except Exception:
            log.exception("pool_launch_failed")
            return False
        warm = Warm(pool_id, handle, time.monotonic())
        if self._closing:
            await self._end(warm)
        else:
            self._idle.append(warm)
            self.launched += 1
        return True

    def _recycle_old(self) -> None:
        now = time.monotonic()
        old = [w for w in self._idle if now - w.born >= self.max_age]
        for warm in old:
            self._idle.remove(warm)
            self.recycled += 1
            self._in_background(self._end(warm))

    def _in_background(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _end(self, warm: Warm) -> None:
        try:
            await self.stop(warm.handle.state)
        except Exception:
            log.exception("pool_browser_stop_failed", pool_id=str(warm.pool_id))

    async def _take(self) -> Warm | None:
        """The oldest waiting browser still alive and young enough; the others are ended."""
        now = time.monotonic()
        while self._idle:
            warm = self._idle.pop(0)
            if now - warm.born < self.max_age and await self.inner.is_alive(warm.handle.state):
                self._wake.set()  # refill
                return warm
            self.recycled += 1
            self._in_background(self._end(warm))
        self._wake.set()
        return None

    async def close_pool(self) -> None:
        """End every pool browser (at shutdown): the filler, the launches under way, the waiting ones."""
        self._closing = True
        await background.stop(self._filler)
        if self._launching:
            await asyncio.wait(set(self._launching))
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._end(w) for w in idle))
        if self._stopping:
            await asyncio.wait(set(self._stopping))

    # --- the driver protocol: what differs from the wrapped driver ---

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        if self.pool_size > 0 and not self._closing and class_of(spec) is not None:
            warm = await self._take()
            handle = await self._claim(warm, spec, on_started) if warm is not None else None
            metrics.pool_claims.labels("hit" if handle is not None else "miss").inc()
            if handle is not None:
                return handle
        return await self.inner.launch(spec, timeout, on_started)

    async def _claim(self, warm: Warm, spec: LaunchSpec, on_started: StateCallback | None) -> BrowserHandle | None:
        """The warm browser as the runtime's, or None (it could not be re-pointed: launch cold)."""
        state = dict(warm.handle.state)
        downloads = self.inner.root / "downloads" / str(spec.run_id or spec.runtime_id)
        try:
            await asyncio.to_thread(self._repoint, warm, spec, state.get("profileDir"), state.get("uid"), downloads)
        except OSError as exc:
            log.warning("pool_claim_failed", error=str(exc)[:200])
            self._in_background(self._end(warm))
            return None
        try:
            state.update(downloadsDir=str(downloads), traffic=spec.traffic)
            state["pool"] = {"id": str(warm.pool_id), "runtimeId": str(spec.runtime_id)}
            if on_started is not None:
                await on_started(dict(state))
        except BaseException:
            await self.stop(state)
            raise
        self.claimed += 1
        log.info("pool_browser_claimed", runtime_id=str(spec.runtime_id), pool_id=str(warm.pool_id))
        handle = warm.handle
        return replace(handle, runtime_id=spec.runtime_id, state=state, state_warning=None)

    def _repoint(self, warm: Warm, spec: LaunchSpec, profile_dir: str, uid: int | None, downloads: Path) -> None:
        """The runtime's directories, owned by the pool browser's uid; the pool id's own go."""
        markers.write(
            profile_dir,
            {**(markers.read(profile_dir) or {}), "poolId": str(warm.pool_id), "runtimeId": str(spec.runtime_id)},
        )
        downloads.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(downloads, uid, uid)
            handover.hand_over(self.inner.files_dir(spec.runtime_id), uid)
        else:
            self.inner.files_dir(spec.runtime_id).mkdir(parents=True, exist_ok=True)
            self.inner.files_dir(spec.runtime_id).chmod(0o700)
        downloads.chmod(0o700)
        shutil.rmtree(self.inner.root / "downloads" / str(warm.pool_id), ignore_errors=True)
        shutil.rmtree(self.inner.files_dir(warm.pool_id), ignore_errors=True)

    async def stop(self, state: dict[str, Any], save_to: Path | None = None) -> int | None:
        profile_dir = state.get("profileDir")
        note = await asyncio.to_thread(markers.read, profile_dir) if profile_dir else None
        saved = await self.inner.stop(state, save_to)
        if note is None or state.get("host") not in (None, getattr(self.inner, "hostname", None)):
            return saved
        await asyncio.to_thread(self._tidy, note, profile_dir)
        return saved

    def _tidy(self, note: dict[str, Any], profile_dir: str) -> None:
        """After a pool browser ended: its runtime's file area goes back to the runtime's own uid (what a
        cold run of it will be), or, unclaimed, the pool id's directories go."""
        runtime_id = note.get("runtimeId")
        if runtime_id:
            if getattr(self.inner, "isolated", False):
                rid = uuid.UUID(runtime_id)
                area = self.inner.files_dir(rid)
                if area.is_dir():
                    handover.hand_over(area, browser_uid(rid))
        elif note.get("poolId"):
            shutil.rmtree(self.inner.files_dir(uuid.UUID(note["poolId"])), ignore_errors=True)
        markers.remove(profile_dir)

    async def list_browsers(self) -> list[ManagedBrowser]:
        found = await self.inner.list_browsers()
        return await asyncio.to_thread(self._named, found)

    def _named(self, found: list[ManagedBrowser]) -> list[ManagedBrowser]:
        """A claimed pool browser under its runtime's id; one waiting in a live server's pool not at all;
        one a dead server left waiting under its pool id, which no runtime has: the sweep ends it."""
        named = []
        for browser in found:
            note = markers.read(browser.browser_id)
            if note is None:
                named.append(browser)
            elif note.get("runtimeId"):
                named.append(replace(browser, runtime_id=uuid.UUID(note["runtimeId"])))
            elif not self._keeper_alive(note):
                named.append(browser)
        return named

    def _keeper_alive(self, note: dict[str, Any]) -> bool:
        pid = note.get("serverPid")
        if not pid:
            return False
        if pid == os.getpid():
            # This process: this pool's, or another server's living in it (tests run several).
            return note.get("serverInstance") != getattr(self.inner, "instance", None) or not self._closing
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def close(self) -> None:
        await self.close_pool()
        await self.inner.close()

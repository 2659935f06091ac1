"""This process's lease on the runs it owns, kept alive, and the runs of dead processes taken over.

Every replica runs one keeper. Each tick (a third of BCTRL_OWNERSHIP_LEASE_SECONDS) it renews this
process's lease (app/runtimes/processes.py), lets go of runs another replica has taken over, and takes
over the active runs whose owner's lease ran out (app/runtimes/supervisor.py `take_over`: one winner
per run, by a compare-and-set on the owner). A process that cannot renew its lease for as long as the
lease lasts stops following all its runs, since another replica may own them by now: two owners would
record every event twice. It follows them again once it can renew, if nobody took them over.

Fencing: from two thirds of the lease after the last renewal (well before another replica may take a
run over, with room for clock skew), `held()` is false and the watchers write nothing. A process paused
past its lease (SIGSTOP, a VM frozen) thus drops what its sockets buffered meanwhile, and on waking
lets go of the runs taken over before its watchers may write again.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from app.core import background
from app.core.context import AppContext
from app.runtimes import processes
from app.runtimes.supervisor import Supervisor

log = structlog.get_logger(__name__)


class OwnershipKeeper:
    def __init__(self, ctx: AppContext, supervisor: Supervisor) -> None:
        self.ctx, self.supervisor = ctx, supervisor
        self.lease = ctx.settings.ownership_lease_seconds
        self._renewed = self._steady_since = time.monotonic()
        self._task: asyncio.Task | None = None
        ctx.lease = self

    def held(self) -> bool:
        return time.monotonic() - self._renewed < self.lease * 2 / 3

    def judging(self) -> bool:
        return self.held() and time.monotonic() - self._steady_since >= self.lease

    async def register(self) -> None:
        """Before this process follows or launches anything: its lease exists from the first moment."""
        await processes.heartbeat(self.ctx)
        self._renewed = self._steady_since = time.monotonic()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ownership-keeper")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.tick()

    async def tick(self) -> None:
        supervisor, renewing = self.supervisor, time.monotonic()
        lapsed = renewing - self._renewed > self.lease
        try:
            await processes.heartbeat(self.ctx)
        except Exception:
            log.warning("lease_renewal_failed", exc_info=True)
            if not self.held():
                await supervisor.let_go_of_lost(everything=True)
            return
        try:
            # Before the lease counts as held again: runs taken over while it was not are let go of first.
            await supervisor.let_go_of_lost()
            if lapsed:
                # Other replicas may have counted its sockets detached and its runs theirs: its clients
                # reconnect, through any replica, and count again.
                await self.ctx.hub.close_all(1012, "this server's lease lapsed; reconnect")
            if not self.held():
                self._steady_since = renewing
            self._renewed = renewing
            await supervisor.take_over()
        except Exception:
            log.exception("ownership_tick_failed")

    async def stop(self) -> None:
        await background.stop(self._task)

    async def leave(self) -> None:
        """At a clean shutdown, after this process has let go of its runs: others take them at once."""
        try:
            await processes.leave(self.ctx)
        except Exception:
            log.warning("lease_release_failed", exc_info=True)

"""Background upkeep of leases in every server process: expiry without waiting for a request,
renewal of run-scoped locks, closing leases whose run ended behind a dead server, rebuilding the
controller cache from the database (a Redis restart empties it) and this process's heartbeat."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from app.connections import service
from app.core.context import AppContext
from app.runtimes import processes

log = structlog.get_logger(__name__)

TICK_SECONDS = 1.0
RENEW_EVERY_TICKS = 10


class Reaper:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await processes.heartbeat(self.ctx)
        await service.restore_locks(self.ctx)
        self._task = asyncio.create_task(self._loop(), name="lease-reaper")

    async def _loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            ticks += 1
            try:
                await service.expire_due(self.ctx)
                if ticks % RENEW_EVERY_TICKS == 0:
                    await processes.heartbeat(self.ctx)
                    await service.renew_run_locks(self.ctx)
                    await service.close_orphans(self.ctx)
                    await service.restore_locks(self.ctx)
            except Exception:
                log.exception("reaper_tick_failed")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

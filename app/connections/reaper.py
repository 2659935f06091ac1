"""Background upkeep of leases in every server process: expiry without waiting for a request,
renewal of run-scoped locks, closing leases whose run ended behind a dead server, rebuilding the
controller cache from the database (a Redis restart empties it). This process's lease is renewed by
app/runtimes/ownership.py."""

from __future__ import annotations

import asyncio

import structlog

from app.connections import service
from app.core import background
from app.core.context import AppContext

log = structlog.get_logger(__name__)

TICK_SECONDS = 1.0
RENEW_EVERY_TICKS = 10


class Reaper:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
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
                    await service.renew_run_locks(self.ctx)
                    await service.close_orphans(self.ctx)
                    await service.restore_locks(self.ctx)
            except Exception:
                log.exception("reaper_tick_failed")

    async def stop(self) -> None:
        await background.stop(self._task)  # cancelled until done, as every loop-forever task

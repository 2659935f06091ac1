"""`GET /pressure`: the capacity signal for load balancers (no authentication, like /readyz)."""

from __future__ import annotations

import os

import psutil
from fastapi import APIRouter

from app.accounts.auth import CtxDep
from app.admission import service
from app.admission.schemas import HostOut, PressureOut, QueueOut, SlotsOut

router = APIRouter(tags=["health"])
routers = (router,)

# The first reading of psutil's CPU figure is meaningless (it measures since the previous call).
psutil.cpu_percent(interval=None)


def _host() -> HostOut:
    memory = psutil.virtual_memory()
    return HostOut(
        cpu_percent=psutil.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count() or 1,
        memory_percent=memory.percent,
        memory_available_bytes=memory.available,
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


@router.get("/pressure", response_model=PressureOut)
async def pressure(ctx: CtxDep) -> PressureOut:
    """Free slots by driver and location, the queue of starts, and the host's CPU and memory."""
    found = await service.pressure(ctx)
    slots = [
        SlotsOut(driver=p.driver, location=p.location, total=p.total, used=p.used, free=max(p.total - p.used, 0))
        for p in found.slots
    ]
    free = max(sum(s.free for s in slots) - found.queue_depth, 0)
    return PressureOut(
        is_available=free > 0,
        slots=slots,
        free=free,
        queue=QueueOut(depth=found.queue_depth, max=found.queue_max, oldest_wait_seconds=found.oldest_wait_seconds),
        warm=ctx.pool.size() if ctx.pool is not None else 0,
        host=_host(),
    )

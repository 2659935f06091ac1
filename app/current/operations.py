"""`GET /v1/operations`: what the console's Operations page shows, for any API key.

The deployment's capacity and admission queue are what `/pressure` answers (it is public); the starts
of the last hour and their latency are the account's own, read from its runs (a start's latency runs
from the slot granted to the browser running, the `runtime.start` command of the run, which is what
`bctrl_browser_start_seconds` observes). `/metrics` counts the same per server process, cumulatively,
and may be closed by a token the console does not have; this answer is the same on every process.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi import APIRouter

from app.accounts import service as accounts
from app.accounts.auth import CtxDep, PrincipalDep
from app.admission import service as admission
from app.admission.schemas import QueueOut, SlotsOut
from app.core import clock
from app.core.schemas import errors
from app.current.operations_schemas import (
    AccountCapacityOut,
    CapacityOut,
    LatencyOut,
    OperationsOut,
    StartBucketOut,
    StartsOut,
)
from app.runs import starts

router = APIRouter(prefix="/v1/operations", tags=["operations"])
routers: tuple[APIRouter, ...] = (router,)

WINDOW = timedelta(hours=1)
BUCKET = timedelta(minutes=1)


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile of `values` (sorted), or None when there are none."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def starts_out(found: list[starts.Start], end: datetime) -> StartsOut:
    begin = end - WINDOW
    count = int(WINDOW / BUCKET)
    buckets: list[list[starts.Start]] = [[] for _ in range(count)]
    for start in found:
        index = int((start.at - begin) / BUCKET)
        if 0 <= index < count:
            buckets[index].append(start)
    latencies = sorted(s.seconds for s in found if s.seconds is not None)

    def bucket(i: int, items: list[starts.Start]) -> StartBucketOut:
        times = sorted(s.seconds for s in items if s.seconds is not None)
        return StartBucketOut(
            start=begin + i * BUCKET,
            started=len(times),
            failed=sum(1 for s in items if s.outcome == "failed"),
            p50_seconds=_round(quantile(times, 0.5)),
            max_seconds=_round(times[-1] if times else None),
        )

    return StartsOut(
        window_seconds=int(WINDOW.total_seconds()),
        bucket_seconds=int(BUCKET.total_seconds()),
        started=len(latencies),
        failed=sum(1 for s in found if s.outcome == "failed"),
        pending=sum(1 for s in found if s.outcome == "pending"),
        latency=LatencyOut(
            p50_seconds=_round(quantile(latencies, 0.5)),
            p95_seconds=_round(quantile(latencies, 0.95)),
            max_seconds=_round(latencies[-1] if latencies else None),
        ),
        buckets=[bucket(i, items) for i, items in enumerate(buckets)],
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@router.get("", response_model=OperationsOut, responses=errors(), summary="Capacity, queue and the last hour's starts")
async def get_operations(ctx: CtxDep, p: PrincipalDep) -> OperationsOut:
    """Capacity (slots used and free), the admission queue, the account's running browsers against its
    limit, and the account's browser starts of the last hour by minute with their latency."""
    now = clock.now()
    # Buckets end at the next whole minute, so a bucket is the same minute on every read.
    end = now.replace(second=0, microsecond=0) + BUCKET
    pressure = await admission.pressure(ctx)
    slots = [
        SlotsOut(driver=s.driver, location=s.location, total=s.total, used=s.used, free=max(s.total - s.used, 0))
        for s in pressure.slots
    ]
    account = await accounts.get_account(ctx.db, p.account_id)
    found = await starts.since(ctx, p.account_id, end - WINDOW)
    return OperationsOut(
        computed_at=now,
        capacity=CapacityOut(
            slots=slots,
            total=sum(s.total for s in slots),
            used=sum(s.used for s in slots),
            free=max(sum(s.free for s in slots) - pressure.queue_depth, 0),
            warm=ctx.pool.size() if ctx.pool is not None else 0,
        ),
        queue=QueueOut(
            depth=pressure.queue_depth, max=pressure.queue_max, oldest_wait_seconds=pressure.oldest_wait_seconds
        ),
        account=AccountCapacityOut(
            running=await admission.account_running(ctx, p.account_id),
            limit=admission.account_limit(ctx, account.limits),
        ),
        starts=starts_out(found, end),
    )

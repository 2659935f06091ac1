"""`GET /v1/operations`: what the console's Operations page shows, for any API key.

The deployment's capacity and admission queue are what `/pressure` answers (it is public); the starts
of the last hour and their latency are the account's own, read from its runs (a start's latency runs
from the slot granted to the browser running, the `runtime.start` command of the run, which is what
`bctrl_browser_start_seconds` observes). `/metrics` counts the same per server process, cumulatively,
and may be closed by a token the console does not have; this answer is the same on every process.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import and_, func, select

from app.accounts import service as accounts
from app.accounts.auth import CtxDep, PrincipalDep
from app.admission import service as admission
from app.admission.schemas import QueueOut, SlotsOut
from app.core import clock
from app.core.context import AppContext
from app.core.schemas import errors
from app.current.operations_schemas import (
    AccountCapacityOut,
    CapacityOut,
    LatencyOut,
    OperationsOut,
    StartBucketOut,
    StartsOut,
)
from app.runs.command_models import Command
from app.runs.models import Run
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS

router = APIRouter(prefix="/v1/operations", tags=["operations"])
routers: tuple[APIRouter, ...] = (router,)

WINDOW = timedelta(hours=1)
BUCKET = timedelta(minutes=1)
# At most this many starts are read for the figures (far beyond what one hour of one account holds).
MAX_STARTS = 50_000


@dataclass(frozen=True)
class Start:
    at: datetime
    outcome: str  # started, failed, pending
    seconds: float | None


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile of `values` (sorted), or None when there are none."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


async def starts_since(ctx: AppContext, account_id: uuid.UUID, since: datetime) -> list[Start]:
    """The account's runs started (admitted) since `since`, each with how its start ended."""
    started = and_(Command.run_id == Run.id, Command.entry_call == "runtime.start")
    stmt = (
        select(Run.started_at, Run.finished_at, Command.finished_at)
        .outerjoin(Command, started)
        .where(Run.account_id == account_id, Run.started_at >= since)
        .order_by(Run.started_at)
        .limit(MAX_STARTS)
    )
    async with ctx.db.read() as s:
        rows = (await s.execute(stmt)).all()
    found = []
    for at, finished, running_at in rows:
        if running_at is not None:
            found.append(Start(at, "started", max(0.0, (running_at - at).total_seconds())))
        else:  # never ran: failed (or stopped) before running, or still starting
            found.append(Start(at, "failed" if finished is not None else "pending", None))
    return found


def starts_out(found: list[Start], end: datetime) -> StartsOut:
    begin = end - WINDOW
    count = int(WINDOW / BUCKET)
    buckets: list[list[Start]] = [[] for _ in range(count)]
    for start in found:
        index = int((start.at - begin) / BUCKET)
        if 0 <= index < count:
            buckets[index].append(start)
    latencies = sorted(s.seconds for s in found if s.seconds is not None)

    def bucket(i: int, items: list[Start]) -> StartBucketOut:
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


async def _account_running(ctx: AppContext, account_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Runtime.account_id == account_id, Runtime.status.in_(RS.LIVE), Runtime.deleted_at.is_(None)
    )
    async with ctx.db.read() as s:
        return (await s.execute(stmt)).scalar_one()


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
    found = await starts_since(ctx, p.account_id, end - WINDOW)
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
            running=await _account_running(ctx, p.account_id),
            limit=admission.account_limit(ctx, account.limits),
        ),
        starts=starts_out(found, end),
    )

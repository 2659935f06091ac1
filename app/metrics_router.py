"""`GET /metrics`: the Prometheus exposition of this server process (app/core/metrics.py holds the metrics).

Open like /readyz unless BCTRL_METRICS_TOKEN is set (then `Authorization: Bearer <token>`): the
numbers carry no ids, names or URLs, but a deployment whose API port is public may want them closed.
"""

from __future__ import annotations

import asyncio
import hmac

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from sqlalchemy import func, select

from app.connections.models import Connection, ConnectionScope, ConnectionStatus
from app.core import metrics
from app.core.context import AppContext, CtxDep
from app.core.errors import Unauthorized
from app.core.schemas import errors
from app.runtimes.models import Runtime, RuntimeStatus

log = structlog.get_logger(__name__)

SCRAPE_HOOK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text exposition (OpenMetrics when the Accept header asks for it)",
        },
        **errors(401),  # only when BCTRL_METRICS_TOKEN is set
    },
)
async def scrape(ctx: CtxDep, request: Request) -> Response:
    """This process's counters and histograms, and the deployment's gauges read from the database."""
    _check_token(ctx, request.headers.get("authorization"))
    await refresh(ctx)
    # The text format, or OpenMetrics when the scraper asks for it. Rendering is CPU only (about a
    # millisecond per thousand series): not worth a thread.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(REGISTRY), media_type=content_type)


def _check_token(ctx: AppContext, header: str | None) -> None:
    expected = ctx.settings.metrics_token
    if not expected:
        return
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized("Metrics need Authorization: Bearer <BCTRL_METRICS_TOKEN>")


async def refresh(ctx: AppContext) -> None:
    """Gauges read at scrape time: ours, then every package's registered hook; a failing one keeps its
    previous value (logged), so one slow table never empties the scrape."""
    for hook in (_browsers, _leases, *metrics.scrape_hooks()):
        try:
            await asyncio.wait_for(hook(ctx), SCRAPE_HOOK_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("metrics_scrape_hook_failed", hook=getattr(hook, "__qualname__", "?"), error=type(exc).__name__)
    metrics.events_queued.set(getattr(ctx.events, "pending", 0))


async def _browsers(ctx: AppContext) -> None:
    stmt = (
        select(Runtime.driver, Runtime.status, func.count())
        .where(Runtime.status.in_(RuntimeStatus.LIVE), Runtime.deleted_at.is_(None))
        .group_by(Runtime.driver, Runtime.status)
    )
    async with ctx.db.read() as s:
        rows = (await s.execute(stmt)).all()
    # Every live status of this process's driver is reported, at 0 when none: a series that vanishes
    # reads as "no data", not as "none running".
    counts = {(ctx.driver.name, status): 0 for status in RuntimeStatus.LIVE}
    counts.update({(driver, status): n for driver, status, n in rows})
    metrics.browsers.clear()
    for (driver, status), n in counts.items():
        metrics.browsers.labels(driver, status).set(n)


async def _leases(ctx: AppContext) -> None:
    stmt = (
        select(Connection.scope, func.count())
        .where(Connection.status == ConnectionStatus.ACTIVE)
        .group_by(Connection.scope)
    )
    async with ctx.db.read() as s:
        rows = (await s.execute(stmt)).all()
    counts = {ConnectionScope.LEASE: 0, ConnectionScope.RUN: 0} | dict(rows)
    for scope, n in counts.items():
        metrics.leases_active.labels(scope).set(n)

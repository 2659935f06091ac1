"""Installing the warm pool in a server: the local driver is wrapped (app/pool/driver.py)."""

from __future__ import annotations

import structlog

from app.core import metrics
from app.core.context import AppContext
from app.pool.driver import PooledDriver

log = structlog.get_logger(__name__)


def install(ctx: AppContext) -> PooledDriver | None:
    """Wrap the local driver and start filling when BCTRL_POOL_SIZE > 0. Wrapped even with no pool:
    its sweep must tell pool browsers of other servers on this host from orphans. The Docker driver
    names a container after its runtime when it creates it, so a container cannot be re-pointed: no pool."""
    settings = ctx.settings
    if ctx.driver.name != "local":
        if settings.pool_size:
            log.warning("pool_unsupported", driver=ctx.driver.name)
        return None
    pool = PooledDriver(
        ctx.driver,
        size=settings.pool_size,
        fill_per_second=settings.pool_fill_per_second,
        max_age=settings.pool_max_age_seconds,
        launch_timeout=settings.launch_timeout_seconds,
    )
    ctx.driver = pool
    ctx.pool = pool
    pool.start()
    return pool


async def stop(ctx: AppContext) -> None:
    """End the pool's browsers (claimed ones are runtimes: the supervisor's shutdown ends those)."""
    if isinstance(ctx.pool, PooledDriver):
        await ctx.pool.close_pool()


@metrics.on_scrape
async def _warm_browsers(ctx: AppContext) -> None:
    """This process's pool (each process keeps its own)."""
    if ctx.pool is not None:
        for state, count in ctx.pool.counts().items():
            metrics.pool_browsers.labels(ctx.driver.name, state).set(count)

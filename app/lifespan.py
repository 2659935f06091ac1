"""The assembly: builds the AppContext and the background services of a server process, wires them
(watchers of a run, run-end hooks, upkeep jobs of the sweep) and stops them in reverse order.

This is the one module above the resource packages besides the factory (app/main.py): the packages
below know each other only through the context's ports (core/ports.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from app.accounts.keys import StretchedKeys
from app.accounts.service import ensure_bootstrap_key
from app.cdp.hub import Hub
from app.cdp.observer import RunObserver
from app.connections import service as connection_service
from app.connections.reaper import Reaper
from app.core import datadir, server_key
from app.core.config import Settings
from app.core.context import AppContext
from app.core.db import Database
from app.drivers.local import LocalDriver
from app.egress import service as egress
from app.invocations.worker import InvocationWorker
from app.live.recorder import Recorder, finalize_abandoned
from app.live.screencast import ScreencastHub
from app.locks import make_lock
from app.runs import service as runs
from app.runs.notifier import RunNotifier
from app.runs.writer import EventWriter
from app.runtimes.supervisor import Supervisor

log = structlog.get_logger(__name__)


def make_driver(settings: Settings, signing_key: bytes):
    if settings.driver == "docker":
        from app.drivers.docker import DockerDriver  # the docker package is only needed by this driver

        # One label value per database: servers sharing a database share containers, others never touch them.
        deployment = server_key.derive(signing_key, "deployment", "docker")[:16]
        return DockerDriver(
            image=settings.docker_image,
            network=settings.docker_network,
            deployment=deployment,
            memory=settings.docker_memory,
            cpus=settings.docker_cpus,
            pids_limit=settings.docker_pids_limit,
            shm_size=settings.docker_shm_size,
            scratch_dir=settings.data_dir.resolve(),
            stop_timeout=settings.stop_timeout_seconds,
        )
    return LocalDriver(
        settings.resolved_chromium_path,
        settings.data_dir,
        settings.stop_timeout_seconds,
        browser_root=settings.resolved_browser_root,
        isolation=settings.browser_isolation,
        max_state_bytes=settings.max_browser_state_bytes,
    )


@asynccontextmanager
async def serve(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Build the context and the background services, serve, then stop them in reverse order."""
    datadir.secure(settings.data_dir, None if settings.database_url else settings.data_dir.resolve() / "bctrl.sqlite3")
    db = Database(settings.resolved_database_url)
    lock = make_lock(settings.redis_url, settings.redis_prefix)
    notifier = RunNotifier(settings.redis_url, settings.redis_prefix)
    db.on_events_committed = notifier.publish
    signing_key = await server_key.load(db, settings.secret_key)
    ctx = AppContext(
        settings=settings,
        db=db,
        driver=make_driver(settings, signing_key),
        lock=lock,
        hub=Hub(),
        notifier=notifier,
        events=EventWriter(db),
        signing_key=signing_key,
    )
    ctx.screencasts = ScreencastHub()
    egress_proxy = await egress.start(settings, ctx.driver)
    ctx.api_keys = StretchedKeys(signing_key)
    await notifier.start()
    await ctx.events.start()
    if settings.redis_url:
        ctx.readiness_probes["lock"] = lock.ping
    ctx.invocations = InvocationWorker(ctx)

    async def purge_old_events() -> None:
        await runs.purge_old_events(ctx)

    async def finish_abandoned_recordings() -> None:
        await finalize_abandoned(ctx)

    ctx.supervisor = Supervisor(
        ctx,
        watchers=[RunObserver.for_run, Recorder.for_run],
        upkeep=[purge_old_events, finish_abandoned_recordings, ctx.invocations.recover],
    )
    ctx.run_end_hooks.append(lambda runtime_id, run_id: connection_service.on_run_end(ctx, runtime_id, run_id))
    reaper = Reaper(ctx)
    if settings.api_key:
        await ensure_bootstrap_key(db, settings.api_key, ctx.api_keys)
    await ctx.supervisor.start()
    await ctx.invocations.start()
    await reaper.start()
    app.state.ctx = ctx
    log.info(
        "server_ready",
        driver=ctx.driver.name,
        database=db.engine.dialect.name,
        public_url=settings.resolved_public_url,
    )
    try:
        yield
    finally:
        await reaper.stop()
        await ctx.invocations.stop()
        await ctx.supervisor.shutdown()
        await ctx.hub.close_all(1001, "server shutting down")
        await ctx.screencasts.close()
        await ctx.events.stop()
        await ctx.driver.close()
        await egress_proxy.close()
        await notifier.close()
        await lock.close()
        await db.dispose()

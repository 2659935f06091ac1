"""The assembly: builds the AppContext and the background services of a server process, wires them
(watchers of a run, run-end hooks, upkeep jobs of the sweep) and stops them in reverse order.

This is the one module above the resource packages besides the factory (app/main.py): the packages
below know each other only through the context's ports (core/ports.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import structlog
from fastapi import FastAPI

from app.accounts.keys import StretchedKeys
from app.accounts.service import ensure_bootstrap_key
from app.browsing.links import BrowserLinks
from app.cdp.hub import Hub
from app.cdp.observer import RunObserver
from app.connections import service as connection_service
from app.connections.reaper import Reaper
from app.connections.revocation import KeySocketSweep
from app.core import datadir, server_key
from app.core.config import Settings
from app.core.context import AppContext
from app.core.db import Database
from app.current.drains import pump_for as drain_pump_for
from app.current.webhooks import dispatcher_for as webhook_dispatcher_for
from app.drivers.local import LocalDriver
from app.egress import service as egress
from app.invocations.worker import InvocationWorker
from app.live.recorder import Recorder, finalize_abandoned
from app.live.screencast import ScreencastHub
from app.locks import make_lock
from app.pool import service as pool
from app.runs import service as runs
from app.runs import streams
from app.runs.notifier import RunNotifier
from app.runs.writer import EventWriter
from app.runtimes.ownership import OwnershipKeeper
from app.runtimes.supervisor import Supervisor
from app.tasks.runner import TaskRunner
from app.tasks.service import PROVIDER as TASK_PROVIDER
from app.toolcalls import direct as toolcall_direct
from app.toolcalls import service as toolcalls

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
    if settings.driver == "swarm":
        from app.drivers.swarm import SwarmDriver

        return SwarmDriver(
            image=settings.docker_image,
            deployment=server_key.derive(signing_key, "deployment", "swarm")[:16],
            memory=settings.docker_memory,
            cpus=settings.docker_cpus,
            pids_limit=settings.docker_pids_limit,
            shm_size=settings.docker_shm_size,
            scratch_dir=settings.data_dir.resolve(),
            stop_timeout=settings.stop_timeout_seconds,
            reserve_cpus=settings.swarm_reserve_cpus,
            reserve_memory=settings.swarm_reserve_memory,
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
    ctx.screencasts = ScreencastHub(pages_opened=partial(streams.pages_opened, ctx))
    ctx.browsing = BrowserLinks()
    egress_proxy = await egress.start(settings, ctx.driver)
    ctx.api_keys = StretchedKeys(signing_key)
    await notifier.start()
    await ctx.events.start()
    if settings.redis_url:
        ctx.readiness_probes["lock"] = lock.ping
    ctx.invocations = InvocationWorker(ctx)
    ctx.invocations.register(TASK_PROVIDER, TaskRunner(ctx))  # tasks run on the invocations' path

    async def purge_old_events() -> None:
        await runs.purge_old_events(ctx)

    async def finish_abandoned_recordings() -> None:
        await finalize_abandoned(ctx)

    async def end_orphaned_tool_calls() -> None:
        await toolcalls.recover(ctx)

    ctx.supervisor = Supervisor(
        ctx,
        watchers=[RunObserver.for_run, Recorder.for_run],
        upkeep=[purge_old_events, finish_abandoned_recordings, ctx.invocations.recover, end_orphaned_tool_calls],
    )
    ctx.run_end_hooks.append(lambda runtime_id, run_id: connection_service.on_run_end(ctx, runtime_id, run_id))
    ctx.run_end_hooks.append(lambda _runtime_id, run_id: ctx.browsing.forget(run_id))
    reaper = Reaper(ctx)
    ownership = OwnershipKeeper(ctx, ctx.supervisor)
    if settings.api_key:
        await ensure_bootstrap_key(db, settings.api_key, ctx.api_keys)
    await ownership.register()  # this process's lease, before it adopts or launches a browser
    await ctx.supervisor.start()
    ownership.start()
    await ctx.invocations.start()
    await toolcalls.recover(ctx)
    await reaper.start()
    # --- start: admission (issue 16) ---
    # --- start: warm pool (issue 16) ---
    pool.install(ctx)
    # --- start: tenants and keys (issue 16) ---
    ctx.supervisor.upkeep.append(KeySocketSweep(ctx))  # sockets of keys revoked elsewhere close within a sweep
    # --- start: usage (issue 16) ---
    # --- start: webhooks (issue 16) ---
    webhook_dispatcher = webhook_dispatcher_for(ctx)  # fans the outbox out to webhooks, sends deliveries
    ctx.supervisor.upkeep.append(webhook_dispatcher.prune_outbox)
    await webhook_dispatcher.start()
    # --- start: drains (issue 16) ---
    drain_pump = drain_pump_for(ctx)  # exports events to drains, in the current words
    await drain_pump.start()
    # --- start: metrics (issue 16) ---
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
        # --- stop: drains (issue 16) ---
        await drain_pump.stop()
        # --- stop: webhooks (issue 16) ---
        await webhook_dispatcher.stop()
        # --- stop: warm pool (issue 16) ---
        await pool.stop(ctx)
        # --- stop: admission (issue 16) ---
        await reaper.stop()
        await ownership.stop()
        await ctx.invocations.stop()
        await toolcall_direct.close()
        await ctx.supervisor.shutdown()
        await ctx.hub.close_all(1001, "server shutting down")
        await ctx.screencasts.close()
        await ctx.browsing.close()
        await ctx.events.stop()
        # Its runs are let go of (browsers that outlive it) or ended: other replicas take them at once.
        await ownership.leave()
        await ctx.driver.close()
        await egress_proxy.close()
        await notifier.close()
        await lock.close()
        await db.dispose()

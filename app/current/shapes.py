"""Our rows in the current generation's words: a runtime is a browser, its runs are runs.

Status words (the bctrl 0.3 SDK): a browser is `running` while it has a current run, else `idle`; a
run is `starting`/`active`/`stopping` by its runtime's transition while it is current, `ended` when
completed, `failed` when failed. The controller's holder kinds become `agent` (a CDP connection or an
invocation), `human` (an input viewer) or `none`.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.artifacts.models import Artifact
from app.connections import service as connections
from app.core import clock
from app.core.context import AppContext
from app.current.options import DEFAULT_TIMEOUT_SECONDS
from app.current.proxy_schemas import proxy_out
from app.current.schemas import (
    BrowserOut,
    Connections,
    Control,
    RunOut,
    RunRecording,
    SavedState,
    Usage,
    ViewportOut,
    Warning,
)
from app.live import service as live
from app.runs.models import Run, RunStatus
from app.runtimes.models import Runtime, RuntimeStatus
from app.runtimes.schemas import BrowserConfig
from app.usage import locations

DEFAULT_VIEWPORT = (1280, 720)
_HOLDERS = {"connection": "agent", "invocation": "agent", "api": "agent", "live_view": "human"}


def run_status(run: Run, runtime: Runtime | None) -> str:
    if run.status == RunStatus.COMPLETED:
        return "ended"
    if run.status == RunStatus.FAILED:
        return "failed"
    if runtime is not None and runtime.active_run_id == run.id:
        if runtime.status == RuntimeStatus.STARTING:
            return "starting"
        if runtime.status == RuntimeStatus.STOPPING:
            return "stopping"
    return "active"


def holder_word(kind: str | None) -> str:
    """Our controller kind in the current generation's words: `agent`, `human` or `none`."""
    return _HOLDERS.get(kind, "none") if kind else "none"


def control_of(run: Run, runtime: Runtime | None) -> Control:
    current = runtime is not None and runtime.active_run_id == run.id and run.status == RunStatus.ACTIVE
    kind = runtime.controller_kind if current and runtime.controller_expires_at else None
    if kind and runtime.controller_expires_at <= clock.now():
        kind = None  # a holder past its lease holds nothing, even before the sweep clears it
    since = (runtime.controller_since if current else None) or run.finished_at or run.started_at
    return Control(holder=_HOLDERS.get(kind, "none"), since=since, epoch=runtime.controller_epoch if runtime else 0)


async def connections_of(ctx: AppContext, runtime: Runtime, run: Run) -> Connections | None:
    """The run's CDP URL and live-view links while its browser runs: the run-scoped lease, minted on
    first read (it holds the controller lock, as every CDP lease does)."""
    if run.status != RunStatus.ACTIVE or runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id != run.id:
        return None
    lease = await connections.run_connection(ctx, runtime, run)
    links = await live.run_links(ctx, run)
    timeout = runtime.idle_timeout_seconds or DEFAULT_TIMEOUT_SECONDS
    return Connections(
        cdp_url=lease.cdp_url,
        expires_at=clock.now() + timedelta(seconds=timeout),
        live_view_url=links["input"],
        live_view_read_only_url=links["none"],
        webdriver_url=f"{ctx.settings.resolved_public_url}/v1/webdriver/{run.id}",
    )


def run_out(run: Run, runtime: Runtime | None, connections: Connections | None = None) -> RunOut:
    warnings = None
    if run.failure:
        warnings = [Warning(type=run.failure.get("code", "run.failed"), message=run.failure.get("message", ""))]
    return RunOut(
        id=str(run.id),
        resource_id=str(run.runtime_id),
        space_id=str(run.space_id),
        location=locations.placed(runtime) if runtime is not None else locations.LOCAL,
        status=run_status(run, runtime),
        end_reason=run.end_reason,
        control=control_of(run, runtime),
        recording=RunRecording(enabled=run.recording),
        connections=connections,
        trace_id=run.id.hex,
        warnings=warnings,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.finished_at,
        updated_at=run.finished_at or run.started_at,
    )


async def usage_of(ctx: AppContext, run: Run) -> Usage:
    async with ctx.db.read() as s:
        files_bytes = (
            await s.execute(select(func.coalesce(func.sum(Artifact.size_bytes), 0)).where(Artifact.run_id == run.id))
        ).scalar_one()
    end = run.finished_at or clock.now()
    return Usage(
        computed_at=clock.now(),
        files_bytes=int(files_bytes or 0),
        runtime_seconds=round((end - run.started_at).total_seconds(), 3),
    )


def browser_warnings(ctx: AppContext, runtime: Runtime) -> list[Warning] | None:
    found = []
    warning = (runtime.saved_state or {}).get("warning")
    if warning:
        found.append(Warning(type="browser.state_warning", message=warning))
    if runtime.keep_state and not ctx.driver.keeps_state:
        found.append(
            Warning(
                type="browser.state_unsupported",
                message=f"The {ctx.driver.name} driver does not keep a browser's state between runs yet",
            )
        )
    return found or None


def browser_out(ctx: AppContext, runtime: Runtime, run: Run | None, connections: Connections | None) -> BrowserOut:
    config = BrowserConfig.model_validate(runtime.config or {})
    width, height = config.window_size() or DEFAULT_VIEWPORT
    saved = runtime.saved_state or {}
    launch = runtime.launch_options or {}
    return BrowserOut(
        id=str(runtime.id),
        name=runtime.name,
        space_id=str(runtime.space_id),
        status="running" if runtime.active_run_id is not None else "idle",
        current_run=run_out(run, runtime, connections) if run is not None else None,
        auto_upgrade=True,
        expire_after_idle_days=runtime.expire_after_idle_days or 0,
        extensions=launch.get("extensions") or [],
        force_open_shadow_roots=False,
        gpu=False,
        headless=launch.get("headless", True) is not False,
        location=locations.placed(runtime),
        metadata=runtime.metadata_ or {},
        network_traffic=launch.get("networkTraffic"),
        proxy=proxy_out(launch),
        recording=runtime.recording,
        saved_state=SavedState(status=saved.get("status", "none"), size_bytes=saved.get("sizeBytes")),
        standby_after_seconds=0,
        stealth="normal",
        timeout_seconds=runtime.idle_timeout_seconds or 0,
        viewport=ViewportOut(width=width, height=height),
        web_rtc_proxy_only=bool(launch.get("webRtcProxyOnly")),
        warnings=browser_warnings(ctx, runtime),
        created_at=runtime.created_at,
        updated_at=runtime.updated_at,
        last_used_at=runtime.last_used_at or runtime.created_at,
    )


async def browser(ctx: AppContext, runtime: Runtime) -> BrowserOut:
    """The browser with its current run (and the run's connections while it runs), read fresh."""
    async with ctx.db.read() as s:
        runtime = await s.get(Runtime, runtime.id) or runtime
        run = await s.get(Run, runtime.active_run_id) if runtime.active_run_id else None
    connections = await connections_of(ctx, runtime, run) if run is not None else None
    if connections is not None:
        async with ctx.db.read() as s:  # minting the run's lease may just have taken the controller
            runtime = await s.get(Runtime, runtime.id) or runtime
    return browser_out(ctx, runtime, run, connections)

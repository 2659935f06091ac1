"""Runtimes: create, read, update, delete, and start/stop through the lifecycle module."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, TooManyRequests
from app.core.paging import PageParams, fetch_by_id
from app.runtimes import lifecycle
from app.runtimes.lifecycle import Started, Stopped, runtime_not_found
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS
from app.runtimes.schemas import BrowserConfig, RuntimeUpdate
from app.spaces.models import Space

DEFAULT_NAME = "browser"


def _config_dict(config: BrowserConfig | None) -> dict:
    return config.model_dump(by_alias=True, exclude_none=True) if config else {}


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """What a create asks for, whichever generation spelled it (the routers translate their bodies)."""

    name: str | None = None
    type: str = "browser"
    config: BrowserConfig | None = None
    metadata: dict | None = None
    recording: bool = True
    idle_timeout_seconds: int | None = None


async def _insert(ctx: AppContext, p: Principal, space: Space, spec: RuntimeSpec) -> Runtime:
    now = clock.now()
    runtime = Runtime(
        id=ids.new_id(),
        account_id=p.account_id,
        space_id=space.id,
        name=spec.name or DEFAULT_NAME,
        type=spec.type,
        status=RS.STOPPED,
        config=_config_dict(spec.config),
        metadata_=spec.metadata,
        recording=spec.recording,
        idle_timeout_seconds=spec.idle_timeout_seconds,
        active_run_id=None,
        driver=ctx.driver.name,
        driver_state=None,
        failure=None,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    async with ctx.db.transaction() as s:
        s.add(runtime)
    return runtime


async def create(ctx: AppContext, p: Principal, space: Space, spec: RuntimeSpec, *, start: bool) -> Runtime | Started:
    """Created `stopped`, or with `start` also launched (then what the launch started: the runtime
    `active` with its run). A runtime whose launch is refused for capacity is not kept."""
    runtime = await _insert(ctx, p, space, spec)
    if not start:
        return runtime
    return await _launch_new(ctx, runtime)


async def _launch_new(ctx: AppContext, runtime: Runtime) -> Started:
    """Launch a runtime created by this same request; one refused for capacity is not kept."""
    try:
        return await lifecycle.launch(ctx, runtime.id)
    except TooManyRequests:
        async with ctx.db.transaction() as s:
            await s.execute(
                sql_delete(Runtime).where(
                    Runtime.id == runtime.id, Runtime.status == RS.STOPPED, Runtime.active_run_id.is_(None)
                )
            )
        raise


async def get(ctx: AppContext, p: Principal, runtime_id: str) -> Runtime:
    runtime = await get_owned(ctx.db, Runtime, runtime_id, p.account_id)
    if runtime is None or runtime.deleted_at is not None:
        raise runtime_not_found(runtime_id)
    return runtime


async def list_runtimes(
    ctx: AppContext, p: Principal, page: PageParams, *, space: Space | None = None, statuses: list[str] | None = None
) -> tuple[list[Runtime], str | None]:
    stmt = select(Runtime).where(Runtime.account_id == p.account_id, Runtime.deleted_at.is_(None))
    if space is not None:
        stmt = stmt.where(Runtime.space_id == space.id)
    if statuses:
        stmt = stmt.where(Runtime.status.in_(statuses))
    return await fetch_by_id(ctx.db, stmt, Runtime.id, page)


async def start(ctx: AppContext, runtime: Runtime, *, recording: bool | None = None) -> Started:
    return await lifecycle.launch(ctx, runtime.id, recording=recording)


async def stop(ctx: AppContext, runtime: Runtime) -> Stopped:
    return await lifecycle.stop(ctx, runtime.id)


async def update(ctx: AppContext, runtime: Runtime, body: RuntimeUpdate) -> Runtime:
    changes = body.model_fields_set  # field names (a dump would give the camelCase aliases)
    async with ctx.db.transaction() as s:
        runtime = (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one()
        if "config" in changes:
            if runtime.status != RS.STOPPED and runtime.status != RS.FAILED:
                raise Conflict(
                    "config can only change while the runtime is stopped",
                    code="runtime.not_stopped",
                    details={"runtimeId": str(runtime.id), "status": runtime.status},
                )
            runtime.config = _config_dict(body.config)
        if "name" in changes and body.name is not None:
            runtime.name = body.name
        if "metadata" in changes:
            runtime.metadata_ = body.metadata
        if "idle_timeout_seconds" in changes:
            runtime.idle_timeout_seconds = body.idle_timeout_seconds
        if "recording" in changes and body.recording is not None:
            runtime.recording = body.recording
        runtime.updated_at = clock.now()
    return runtime


async def delete(ctx: AppContext, runtime: Runtime, *, force: bool = False) -> uuid.UUID:
    """Delete a stopped runtime (its runs stay readable); `force` stops a live one first."""
    if force and runtime.status in RS.LIVE:
        await lifecycle.stop(ctx, runtime.id)
    async with ctx.db.transaction() as s:
        runtime = (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one()
        if runtime.status in RS.LIVE:
            raise Conflict(
                "Runtime is running; stop it first or pass force=true",
                code="runtime.not_stopped",
                details={"runtimeId": str(runtime.id), "status": runtime.status},
            )
        runtime.deleted_at = runtime.updated_at = clock.now()
    return runtime.id

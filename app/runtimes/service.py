"""Runtimes: create, read, update, delete, and start/stop through the lifecycle module."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, TooManyRequests, the_one_named
from app.core.paging import PageParams, fetch_by_id
from app.runtimes import lifecycle, state
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
    expire_after_idle_days: int | None = None
    # The name must not be taken by another runtime of the space (the current generation's names are
    # unique per space and may stand for the id); older generations allow repeats.
    name_unique: bool = False
    # Keep the browser's profile from one run to the next (app/runtimes/state.py).
    keep_state: bool = False
    # Launch settings beyond `config` (app/runtimes/launch_extras.py).
    launch_options: dict | None = None


def name_conflict(name: str, space_id: object) -> Conflict:
    return Conflict(
        f"A browser named {name!r} already exists in this space",
        code="runtime.name_conflict",
        details={"name": name, "spaceId": str(space_id)},
    )


async def _name_taken(s, space_id: uuid.UUID, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(Runtime.id).where(Runtime.space_id == space_id, Runtime.name == name, Runtime.deleted_at.is_(None))
    if but is not None:
        stmt = stmt.where(Runtime.id != but)
    return (await s.execute(stmt.limit(1))).first() is not None


async def _insert(ctx: AppContext, p: Principal, space: Space, spec: RuntimeSpec) -> Runtime:
    now = clock.now()
    runtime_id = ids.new_id()
    runtime = Runtime(
        id=runtime_id,
        account_id=p.account_id,
        space_id=space.id,
        name=spec.name or (f"{DEFAULT_NAME}-{runtime_id.hex[-8:]}" if spec.name_unique else DEFAULT_NAME),
        type=spec.type,
        status=RS.STOPPED,
        config=_config_dict(spec.config),
        launch_options=spec.launch_options or None,
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
        expire_after_idle_days=spec.expire_after_idle_days,
        keep_state=spec.keep_state,
        last_used_at=None,
        saved_state=None,
    )
    async with ctx.db.transaction() as s:
        if spec.name_unique:
            # The space row's lock serialises creates that race for one name.
            await s.execute(select(Space.id).where(Space.id == space.id).with_for_update())
            if await _name_taken(s, space.id, runtime.name):
                raise name_conflict(runtime.name, space.id)
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


async def find(ctx: AppContext, p: Principal, id_or_name: str, space: Space | None = None) -> Runtime:
    """A runtime by id, or by its name in `space` (in any of the account's spaces when None): 404 when
    nothing matches, 409 `resource.name_ambiguous` when the name stands for more than one."""
    if ids.parse_uuid(id_or_name) is not None:
        runtime = await get_owned(ctx.db, Runtime, id_or_name, p.account_id)
        if runtime is not None and runtime.deleted_at is None and (space is None or runtime.space_id == space.id):
            return runtime
    stmt = select(Runtime).where(
        Runtime.account_id == p.account_id, Runtime.name == id_or_name, Runtime.deleted_at.is_(None)
    )
    if space is not None:
        stmt = stmt.where(Runtime.space_id == space.id)
    async with ctx.db.read() as s:
        found = list((await s.execute(stmt.limit(2))).scalars())
    return the_one_named(found, id_or_name, "browser", runtime_not_found(id_or_name))


@dataclass(frozen=True, slots=True)
class RuntimeFilter:
    space: Space | None = None
    statuses: list[str] | None = None
    # Running (a current run) or not, whatever the transition: the current generation's browser status.
    running: bool | None = None
    name: str | None = None
    # Case-insensitive part of the name.
    text: str | None = None
    # Where it is (its node's location, reported by the driver), else where it asked to be, else `local`.
    location: str | None = None


async def list_runtimes(
    ctx: AppContext, p: Principal, page: PageParams, flt: RuntimeFilter = RuntimeFilter(), *, newest_first: bool = False
) -> tuple[list[Runtime], str | None]:
    stmt = select(Runtime).where(Runtime.account_id == p.account_id, Runtime.deleted_at.is_(None))
    if flt.space is not None:
        stmt = stmt.where(Runtime.space_id == flt.space.id)
    if flt.statuses:
        stmt = stmt.where(Runtime.status.in_(flt.statuses))
    if flt.running is not None:
        stmt = stmt.where(Runtime.active_run_id.is_not(None) if flt.running else Runtime.active_run_id.is_(None))
    if flt.name is not None:
        stmt = stmt.where(Runtime.name == flt.name)
    if flt.text:
        escaped = flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(func.lower(Runtime.name).like(f"%{escaped.lower()}%", escape="\\"))
    if flt.location is not None:
        where = func.coalesce(
            Runtime.driver_state["location"].as_string(), Runtime.launch_options["location"].as_string(), "local"
        )
        stmt = stmt.where(where == flt.location)
    return await fetch_by_id(ctx.db, stmt, Runtime.id, page, newest_first=newest_first)


async def start(
    ctx: AppContext,
    runtime: Runtime,
    *,
    recording: bool | None = None,
    on_admitted: asyncio.Event | None = None,
    wait: float = 0,
) -> Started:
    """`wait`: seconds a start refused for a slot may wait in the admission queue."""
    return await lifecycle.launch(ctx, runtime.id, recording=recording, on_admitted=on_admitted, wait=wait)


async def stop(
    ctx: AppContext, runtime: Runtime, *, discard_state: bool = False, on_accepted: asyncio.Event | None = None
) -> Stopped:
    return await lifecycle.stop(ctx, runtime.id, discard_state=discard_state, on_accepted=on_accepted)


async def update(
    ctx: AppContext,
    runtime: Runtime,
    body: RuntimeUpdate,
    *,
    name_unique: bool = False,
    launch_options: dict | None = None,
) -> Runtime:
    """Change a runtime; `launch_options` are merged into its own (a key set to None is removed) and
    apply from its next start."""
    changes = body.model_fields_set  # field names (a dump would give the camelCase aliases)
    async with ctx.db.transaction() as s:
        if name_unique and "name" in changes and body.name is not None:
            await s.execute(select(Space.id).where(Space.id == runtime.space_id).with_for_update())
            if await _name_taken(s, runtime.space_id, body.name, but=runtime.id):
                raise name_conflict(body.name, runtime.space_id)
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
        if "expire_after_idle_days" in changes:
            runtime.expire_after_idle_days = body.expire_after_idle_days
        if launch_options:
            merged = {**(runtime.launch_options or {}), **launch_options}
            runtime.launch_options = {k: v for k, v in merged.items() if v is not None} or None
        runtime.updated_at = clock.now()
    return runtime


async def delete(ctx: AppContext, runtime: Runtime, *, force: bool = False) -> uuid.UUID:
    """Delete a stopped runtime (its runs stay readable); `force` stops a live one first."""
    if force and runtime.status in RS.LIVE:
        await lifecycle.stop(ctx, runtime.id, end_reason="browser_deleted", discard_state=True)
    async with ctx.db.transaction() as s:
        runtime = (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one()
        if runtime.status in RS.LIVE:
            raise Conflict(
                "Runtime is running; stop it first or pass force=true",
                code="runtime.not_stopped",
                details={"runtimeId": str(runtime.id), "status": runtime.status},
            )
        runtime.deleted_at = runtime.updated_at = clock.now()
        saved, runtime.saved_state = runtime.saved_state, None
    await state.forget(ctx, saved)
    return runtime.id


# --- starts and stops that answer before they finish ------------------------------------------


def _keep_result(task: asyncio.Future) -> None:
    # A launch that fails after its request answered is recorded on the run; nothing else awaits it.
    if not task.cancelled():
        task.exception()


async def _within(work, accepted: asyncio.Event, seconds: float) -> None:
    """Run `work` (a start or stop taking `accepted`) to its acceptance, then up to `seconds` more.
    A refusal before acceptance (capacity, a transition) raises; so does a failure within `seconds`."""
    # One budget: time spent before acceptance (waiting for a slot) counts against `seconds`.
    until = asyncio.get_running_loop().time() + seconds
    task = asyncio.ensure_future(work)
    task.add_done_callback(_keep_result)
    gate = asyncio.ensure_future(accepted.wait())
    try:
        await asyncio.wait({task, gate}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gate.cancel()
    left = until - asyncio.get_running_loop().time()
    if not task.done() and left > 0:
        await asyncio.wait({task}, timeout=left)
    if task.done():
        task.result()


async def start_within(ctx: AppContext, runtime: Runtime, seconds: float) -> None:
    """Start the runtime and wait up to `seconds` for its browser; the run exists when this returns.
    A runtime still stopping is waited for first (a start follows the stop under way)."""
    await settled(ctx, runtime, ctx.settings.stop_timeout_seconds * 3, starting=False)
    accepted = asyncio.Event()
    await _within(start(ctx, runtime, on_admitted=accepted, wait=seconds), accepted, seconds)


async def stop_within(ctx: AppContext, runtime: Runtime, seconds: float, *, discard_state: bool = False) -> None:
    accepted = asyncio.Event()
    await _within(stop(ctx, runtime, discard_state=discard_state, on_accepted=accepted), accepted, seconds)


async def settled(ctx: AppContext, runtime: Runtime, seconds: float, *, starting: bool = True) -> Runtime:
    """The runtime once it is out of a transition (stopping, and `starting` too unless told not to
    wait for it), or as it stands after `seconds`."""
    moving = (RS.STARTING, RS.STOPPING) if starting else (RS.STOPPING,)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with ctx.db.read() as s:
            current = await s.get(Runtime, runtime.id)
        if current is None or current.status not in moving or asyncio.get_running_loop().time() >= deadline:
            return current or runtime
        await asyncio.sleep(0.1)

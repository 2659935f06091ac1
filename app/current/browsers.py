"""`/v1/browsers` of the current generation: a browser is our runtime, each start opens a run.

Creates and starts return once the run is admitted (capacity granted), then wait up to `wait`
seconds for the browser; `currentRun.connections` appears once it runs. Stops return once the run is
stopping, then wait the same way; the browser's profile is saved while it stops.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.admission.deps import watch_caller
from app.core.errors import Conflict, DomainError
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.current import launch_checks, options, shapes
from app.current.paths import PathBrowser, ScopeSpace, SpaceHeader, chosen_space
from app.current.schemas import (
    BrowserCreate,
    BrowserOut,
    BrowserPage,
    BrowserUpdate,
    DeletedOut,
    Order,
    RunPage,
    StopBody,
)
from app.runs import service as runs
from app.runtimes import service
from app.runtimes.schemas import RuntimeUpdate
from app.runtimes.service import RuntimeFilter, RuntimeSpec
from app.spaces import service as spaces

# Starts with `wait` may queue for a slot: the queue notices a client that hung up (admission).
router = APIRouter(prefix="/v1/browsers", tags=["browsers (current)"], dependencies=[Depends(watch_caller)])

Page = Annotated[PageParams, Depends(page_params)]
Wait = Annotated[int, Query(ge=0, le=60, description="Seconds to wait for the browser (at most 60)")]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]
# How long a read with `wait` waits at most for a start or stop under way to settle.
MAX_WAIT = 60


@router.post("", status_code=201, response_model=BrowserOut, responses=errors(400, 402, 404, 409, 429, 503))
async def create_browser(
    ctx: CtxDep,
    p: PrincipalDep,
    body: BrowserCreate,
    idem: IdempotencyDep,
    header_space: SpaceHeader = None,
    wait: Wait = 0,
) -> BrowserOut:
    """Create a browser and start its first run; `wait` seconds for it to run."""
    spec = RuntimeSpec(
        name=body.name,
        config=options.config_of(body),
        metadata=body.metadata,
        recording=True if body.recording is None else body.recording,
        idle_timeout_seconds=body.timeout_seconds or options.DEFAULT_TIMEOUT_SECONDS,
        expire_after_idle_days=body.expire_after_idle_days,
        name_unique=True,
        keep_state=True,
    )

    async def make() -> BrowserOut:
        space = await spaces.resolve(ctx, p, chosen_space(body.space_id, header_space))
        launch = await launch_checks.prepare(ctx, p, options.launch_options_of(body))
        runtime = await service.create(ctx, p, space, replace(spec, launch_options=launch), start=False)
        try:
            await service.start_within(ctx, runtime, wait)
        except DomainError as refused:
            if refused.status in (402, 429):
                # Refused for capacity or a spending cap: nothing is kept, as with every generation's create.
                await service.delete(ctx, runtime)
            raise
        return await shapes.browser(ctx, runtime)

    return await idem.once(make, {"body": body.model_dump(mode="json"), "wait": wait})


@router.get("", response_model=BrowserPage, responses=errors(400, 404))
async def list_browsers(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    status: Annotated[list[str] | None, Depends(multi("status", Literal["idle", "running"]))],
    name: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    order: OrderQuery = "desc",
) -> BrowserPage:
    running = None if not status or len(set(status)) == 2 else status[0] == "running"
    flt = RuntimeFilter(
        space=space, running=running, name=name, text=q, location=None if location == "auto" else location
    )
    rows, cursor = await service.list_runtimes(ctx, p, page, flt, newest_first=order == "desc")
    items = [await shapes.browser(ctx, runtime) for runtime in rows]
    return BrowserPage(data=items, has_more=cursor is not None, next_cursor=cursor)


@router.get("/{browser_id}", response_model=BrowserOut, responses=errors(404, 409))
async def get_browser(ctx: CtxDep, runtime: PathBrowser, wait: Wait = 0) -> BrowserOut:
    """The browser and its current run; `wait` seconds for a start or stop under way to settle."""
    if wait:
        runtime = await service.settled(ctx, runtime, min(wait, MAX_WAIT))
    return await shapes.browser(ctx, runtime)


@router.patch("/{browser_id}", response_model=BrowserOut, responses=errors(400, 404, 409))
async def update_browser(ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, body: BrowserUpdate) -> BrowserOut:
    """Settings for the next run (the viewport only while idle; launch settings apply from the next start)."""
    given = body.model_fields_set
    changes = {}
    if "name" in given and body.name is not None:
        changes["name"] = body.name
    if "metadata" in given:
        changes["metadata"] = body.metadata
    if "viewport" in given and body.viewport is not None:
        changes["config"] = options.config_of(body)
    if "timeout_seconds" in given and body.timeout_seconds is not None:
        changes["idle_timeout_seconds"] = body.timeout_seconds
    if "recording" in given and body.recording is not None:
        changes["recording"] = body.recording
    if "expire_after_idle_days" in given:
        changes["expire_after_idle_days"] = body.expire_after_idle_days
    update = RuntimeUpdate.model_construct(_fields_set=set(changes), **changes)
    launch = await launch_checks.prepare(ctx, p, options.launch_options_of(body))
    return await shapes.browser(
        ctx, await service.update(ctx, runtime, update, name_unique=True, launch_options=launch)
    )


@router.delete("/{browser_id}", response_model=DeletedOut, responses=errors(404, 409))
async def delete_browser(ctx: CtxDep, runtime: PathBrowser) -> DeletedOut:
    """Stop its run (if any), then delete it and its saved state; its runs stay readable."""
    return DeletedOut(id=str(await service.delete(ctx, runtime, force=True)))


@router.post("/{browser_id}/start", response_model=BrowserOut, responses=errors(402, 404, 409, 429, 503))
async def start_browser(ctx: CtxDep, runtime: PathBrowser, idem: IdempotencyDep, wait: Wait = 0) -> BrowserOut:
    """Start a run from the saved state; a running browser's current run is returned as it is."""

    async def make() -> BrowserOut:
        await service.start_within(ctx, runtime, wait)
        return await shapes.browser(ctx, runtime)

    return await idem.once(make, {"wait": wait})


@router.post("/{browser_id}/stop", response_model=BrowserOut, responses=errors(400, 404, 409))
async def stop_browser(
    ctx: CtxDep, runtime: PathBrowser, idem: IdempotencyDep, body: StopBody | None = None, wait: Wait = 0
) -> BrowserOut:
    """Stop the current run, keeping the profile as saved state unless `discardState`."""
    discard = bool(body and body.discard_state)

    async def make() -> BrowserOut:
        if runtime.active_run_id is None:
            raise Conflict(
                "The browser is not running",
                code="runtime.not_active",
                details={"browserId": str(runtime.id), "status": "idle"},
            )
        await service.stop_within(ctx, runtime, wait, discard_state=discard)
        return await shapes.browser(ctx, runtime)

    return await idem.once(make, {"discardState": discard, "wait": wait})


@router.get("/{browser_id}/runs", response_model=RunPage, responses=errors(400, 404))
async def list_browser_runs(
    ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, page: Page, order: OrderQuery = "desc"
) -> RunPage:
    rows, cursor = await runs.list_runs(ctx, p, page, runtime_id=runtime.id, newest_first=order == "desc")
    return RunPage(data=[shapes.run_out(run, runtime) for run in rows], has_more=cursor is not None, next_cursor=cursor)

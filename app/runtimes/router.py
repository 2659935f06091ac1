"""Runtime routes in both shapes: seed (`/v1/spaces/{id}/runtimes...`) and flat (`/v1/runtimes...`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.connections import service as connections
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.schemas import Deleted, errors
from app.runs import service as runs
from app.runs.schemas import RunList, RunStatusLiteral
from app.runtimes import service
from app.runtimes.models import Runtime
from app.runtimes.paths import FlatRuntime, SeedRuntime
from app.runtimes.schemas import (
    FlatRuntimeCreate,
    FlatRuntimeOut,
    FlatStartOut,
    RuntimeList,
    RuntimeOut,
    RuntimeStatusLiteral,
    RuntimeUpdate,
    SeedRuntimeCreate,
    StartRequest,
    StopOut,
)
from app.runtimes.service import RuntimeSpec
from app.spaces import service as spaces
from app.spaces.paths import PathSpace, SpaceFilter

Page = Annotated[PageParams, Depends(page_params)]
Include = Annotated[Literal["connection"] | None, Query(description="`connection`: add the run's connection")]
StatusFilter = Annotated[list[str] | None, Depends(multi("status", RuntimeStatusLiteral))]
Force = Annotated[bool, Query(description="Stop a live runtime first instead of refusing")]

seed = APIRouter(prefix="/v1/spaces/{space_id}/runtimes", tags=["runtimes (seed)"])
flat = APIRouter(prefix="/v1/runtimes", tags=["runtimes"])


# --- seed shape -------------------------------------------------------------------------------


@seed.post("", status_code=201, response_model=RuntimeOut, responses=errors(400, 402, 404, 409, 413, 429, 503))
async def create_seed(ctx: CtxDep, p: PrincipalDep, space: PathSpace, body: SeedRuntimeCreate, idem: IdempotencyDep):
    """Create a browser runtime and launch it: it comes back `active` with `activeRunId`."""
    spec = RuntimeSpec(
        name=body.name,
        type=body.kind or body.type,
        config=body.config,
        metadata=body.metadata,
        recording=body.recording,
    )

    async def make() -> RuntimeOut:
        started = await service.create(ctx, p, space, spec, start=True)
        return RuntimeOut.of(started.runtime)

    return await idem.once(make, body.model_dump(mode="json"))


@seed.get("", response_model=RuntimeList, responses=errors(400, 404))
async def list_seed(ctx: CtxDep, p: PrincipalDep, space: PathSpace, page: Page, status: StatusFilter) -> RuntimeList:
    runtimes, cursor = await service.list_runtimes(ctx, p, page, service.RuntimeFilter(space=space, statuses=status))
    return RuntimeList.of(runtimes, cursor)


@seed.get("/{runtime_id}", response_model=RuntimeOut, responses=errors(404))
async def get_seed(runtime: SeedRuntime) -> RuntimeOut:
    return RuntimeOut.of(runtime)


@seed.post("/{runtime_id}/start", response_model=RuntimeOut, responses=errors(402, 404, 409, 429, 503))
async def start_seed(ctx: CtxDep, runtime: SeedRuntime, idem: IdempotencyDep, body: StartRequest | None = None):
    """Start a stopped or failed runtime again, opening a new run."""

    async def make() -> RuntimeOut:
        started = await service.start(ctx, runtime, recording=body.recording if body else None)
        return RuntimeOut.of(started.runtime)

    return await idem.once(make, body.model_dump(mode="json") if body else None)


@seed.post("/{runtime_id}/stop", response_model=RuntimeOut, responses=errors(404, 409))
async def stop_seed(ctx: CtxDep, runtime: SeedRuntime) -> RuntimeOut:
    """Stop the browser and complete the run; stopping a stopped runtime returns it unchanged."""
    return RuntimeOut.of((await service.stop(ctx, runtime)).runtime)


@seed.delete("/{runtime_id}", response_model=Deleted, responses=errors(404, 409))
async def delete_seed(ctx: CtxDep, runtime: SeedRuntime, force: Force = False) -> Deleted:
    return Deleted(id=str(await service.delete(ctx, runtime, force=force)))


@seed.get("/{runtime_id}/runs", response_model=RunList, responses=errors(400, 404))
async def runs_seed(
    ctx: CtxDep,
    p: PrincipalDep,
    runtime: SeedRuntime,
    page: Page,
    status: Annotated[list[str] | None, Depends(multi("status", RunStatusLiteral))],
) -> RunList:
    items, cursor = await runs.list_runs(ctx, p, page, runtime_id=runtime.id, statuses=status)
    return RunList.of(items, cursor)


# --- flat shape -------------------------------------------------------------------------------


@flat.post("", status_code=201, response_model=FlatRuntimeOut, responses=errors(400, 402, 404, 409, 413, 429, 503))
async def create_flat(ctx: CtxDep, p: PrincipalDep, body: FlatRuntimeCreate, idem: IdempotencyDep):
    """Create a runtime in `spaceId` (default space when absent); `start: true` also launches it."""
    spec = RuntimeSpec(
        name=body.name,
        type=body.type,
        config=body.config,
        metadata=body.metadata,
        recording=body.recording,
        idle_timeout_seconds=body.idle_timeout_seconds,
    )

    async def make() -> FlatRuntimeOut:
        space = await spaces.resolve(ctx, p, body.space_id)
        created = await service.create(ctx, p, space, spec, start=body.start)
        if isinstance(created, Runtime):
            return FlatRuntimeOut.of(created)
        connection = await connections.run_connection(ctx, created.runtime, created.run)
        return FlatRuntimeOut.of(created.runtime).attached(connection)

    return await idem.once(make, body.model_dump(mode="json"))


@flat.get("", response_model=RuntimeList, responses=errors(400, 404))
async def list_flat(
    ctx: CtxDep, p: PrincipalDep, page: Page, status: StatusFilter, space: SpaceFilter = None
) -> RuntimeList:
    runtimes, cursor = await service.list_runtimes(ctx, p, page, service.RuntimeFilter(space=space, statuses=status))
    return RuntimeList.of(runtimes, cursor)


@flat.get("/{runtime_id}", response_model=RuntimeOut | FlatRuntimeOut, responses=errors(404))
async def get_flat(ctx: CtxDep, runtime: FlatRuntime, include: Include = None) -> RuntimeOut | FlatRuntimeOut:
    """`include=connection` adds the active run's `connection` (and `connectUrl`)."""
    if include != "connection":
        return RuntimeOut.of(runtime)
    connection = await connections.flat_connection_for_runtime(ctx, runtime)
    return FlatRuntimeOut.of(runtime).attached(connection)


@flat.patch("/{runtime_id}", response_model=RuntimeOut, responses=errors(400, 404, 409))
async def update_flat(ctx: CtxDep, runtime: FlatRuntime, body: RuntimeUpdate) -> RuntimeOut:
    """Rename, retag or reconfigure; `config` only while stopped."""
    return RuntimeOut.of(await service.update(ctx, runtime, body))


@flat.delete("/{runtime_id}", response_model=Deleted, responses=errors(404, 409))
async def delete_flat(ctx: CtxDep, runtime: FlatRuntime, force: Force = False) -> Deleted:
    return Deleted(id=str(await service.delete(ctx, runtime, force=force)))


@flat.post("/{runtime_id}/start", response_model=FlatStartOut, responses=errors(400, 402, 404, 409, 429, 503))
async def start_flat(ctx: CtxDep, runtime: FlatRuntime, idem: IdempotencyDep, body: StartRequest | None = None):
    """Start the runtime and open a run; starting an active runtime returns its current run (`started: false`)."""

    async def make() -> FlatStartOut:
        # The run (new, or the active one) and its run-scoped connection.
        started = await service.start(ctx, runtime, recording=body.recording if body else None)
        connection = await connections.run_connection(ctx, started.runtime, started.run)
        return FlatStartOut(
            runtime_id=str(started.runtime.id),
            run_id=str(started.run.id),
            status=started.runtime.status,
            started=started.started,
        ).attached(connection)

    return await idem.once(make, body.model_dump(mode="json") if body else None)


@flat.post("/{runtime_id}/stop", response_model=StopOut, responses=errors(404, 409))
async def stop_flat(ctx: CtxDep, runtime: FlatRuntime) -> StopOut:
    stopped = await service.stop(ctx, runtime)
    return StopOut(
        runtime_id=str(stopped.runtime.id),
        run_id=str(stopped.run_id) if stopped.run_id else None,
        status=stopped.runtime.status,
        stopped=stopped.stopped,
    )

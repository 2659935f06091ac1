"""Runtime routes in both shapes: seed (`/v1/spaces/{id}/runtimes...`) and flat (`/v1/runtimes...`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.accounts.auth import CtxDep, PrincipalDep
from app.connections import service as connections
from app.connections.schemas import FlatConnection
from app.core import idempotency
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.responses import JSONResponse
from app.core.schemas import Deleted, IdempotencyKey, errors
from app.runs import service as runs
from app.runs.schemas import RunList, RunStatusLiteral
from app.runtimes import service
from app.runtimes.models import Runtime
from app.runtimes.paths import FlatRuntime, SeedRuntime
from app.runtimes.schemas import (
    FlatRuntimeCreate,
    RuntimeList,
    RuntimeOut,
    RuntimeStatusLiteral,
    RuntimeUpdate,
    SeedRuntimeCreate,
    StartOut,
    StartRequest,
    StopOut,
    dump,
)

Page = Annotated[PageParams, Depends(page_params)]
Include = Annotated[Literal["connection"] | None, Query(description="`connection`: add the run's connection")]
StatusFilter = Annotated[list[str] | None, Depends(multi("status", RuntimeStatusLiteral))]
Force = Annotated[bool, Query(description="Stop a live runtime first instead of refusing")]

seed = APIRouter(prefix="/v1/spaces/{space_id}/runtimes", tags=["runtimes (seed)"])
flat = APIRouter(prefix="/v1/runtimes", tags=["runtimes"])


def _connection_fields(connection: FlatConnection | None) -> dict:
    if connection is None:
        return {"connection": None}
    wire = connection.model_dump(mode="json")
    return {"connection": wire, "connectUrl": wire["cdpUrl"], "cdpUrl": wire["cdpUrl"]}


# --- seed shape -------------------------------------------------------------------------------


@seed.post("", status_code=201, response_model=RuntimeOut, responses=errors(400, 404, 409, 413, 429, 503))
async def create_seed(
    ctx: CtxDep,
    p: PrincipalDep,
    space_id: str,
    body: SeedRuntimeCreate,
    request: Request,
    idempotency_key: IdempotencyKey = None,
):
    """Create a browser runtime and launch it: it comes back `active` with `activeRunId`."""

    async def handler():
        started = await service.create_and_launch(ctx, p, space_id, body)
        return 201, dump(RuntimeOut.of(started.runtime))

    return await idempotency.serve(
        ctx.db, p.account_id, request, idempotency_key, body.model_dump(mode="json"), handler
    )


@seed.get("", response_model=RuntimeList, responses=errors(400, 404))
async def list_seed(ctx: CtxDep, p: PrincipalDep, space_id: str, page: Page, status: StatusFilter) -> RuntimeList:
    runtimes, cursor = await service.list_runtimes(ctx, p, page, space_id=space_id, statuses=status)
    return RuntimeList.of(runtimes, cursor)


@seed.get("/{runtime_id}", response_model=RuntimeOut, responses=errors(404))
async def get_seed(runtime: SeedRuntime) -> RuntimeOut:
    return RuntimeOut.of(runtime)


@seed.post("/{runtime_id}/start", response_model=RuntimeOut, responses=errors(404, 409, 429, 503))
async def start_seed(
    ctx: CtxDep,
    p: PrincipalDep,
    space_id: str,
    runtime_id: str,
    request: Request,
    body: StartRequest | None = None,
    idempotency_key: IdempotencyKey = None,
):
    """Start a stopped or failed runtime again, opening a new run."""

    async def handler():
        started = await service.start(ctx, p, runtime_id, space_id=space_id, recording=body.recording if body else None)
        return 200, dump(RuntimeOut.of(started.runtime))

    return await idempotency.serve(
        ctx.db, p.account_id, request, idempotency_key, body.model_dump(mode="json") if body else None, handler
    )


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
    space_id: str,
    runtime_id: str,
    page: Page,
    status: Annotated[list[str] | None, Depends(multi("status", RunStatusLiteral))],
) -> RunList:
    runtime = await service.get(ctx, p, runtime_id, space_id=space_id)
    items, cursor = await runs.list_runs(ctx.db, p, page, runtime_id=runtime.id, statuses=status)
    return RunList.of(items, cursor)


# --- flat shape -------------------------------------------------------------------------------


@flat.post("", status_code=201, response_model=RuntimeOut, responses=errors(400, 404, 409, 413, 429, 503))
async def create_flat(
    ctx: CtxDep, p: PrincipalDep, body: FlatRuntimeCreate, request: Request, idempotency_key: IdempotencyKey = None
):
    """Create a runtime in `spaceId` (default space when absent); `start: true` also launches it."""

    async def handler():
        created = await service.create(ctx, p, body)
        if isinstance(created, Runtime):
            return 201, dump(RuntimeOut.of(created), **_connection_fields(None))
        connection = await connections.run_connection(ctx, created.runtime, created.run)
        return 201, dump(RuntimeOut.of(created.runtime), **_connection_fields(connection))

    return await idempotency.serve(
        ctx.db, p.account_id, request, idempotency_key, body.model_dump(mode="json"), handler
    )


@flat.get("", response_model=RuntimeList, responses=errors(400, 404))
async def list_flat(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    status: StatusFilter,
    space_id: Annotated[str | None, Query(alias="spaceId")] = None,
) -> RuntimeList:
    runtimes, cursor = await service.list_runtimes(ctx, p, page, space_id=space_id, statuses=status)
    return RuntimeList.of(runtimes, cursor)


@flat.get("/{runtime_id}", response_model=RuntimeOut, responses=errors(404))
async def get_flat(ctx: CtxDep, p: PrincipalDep, runtime_id: str, include: Include = None):
    """`include=connection` adds the active run's `connection` (and `connectUrl`)."""
    runtime = await service.get(ctx, p, runtime_id)
    if include != "connection":
        return RuntimeOut.of(runtime)
    connection = await connections.flat_connection_for_runtime(ctx, runtime)
    return JSONResponse(dump(RuntimeOut.of(runtime), **_connection_fields(connection)))


@flat.patch("/{runtime_id}", response_model=RuntimeOut, responses=errors(400, 404, 409))
async def update_flat(ctx: CtxDep, p: PrincipalDep, runtime_id: str, body: RuntimeUpdate) -> RuntimeOut:
    """Rename, retag or reconfigure; `config` only while stopped."""
    return RuntimeOut.of(await service.update(ctx, p, runtime_id, body))


@flat.delete("/{runtime_id}", response_model=Deleted, responses=errors(404, 409))
async def delete_flat(ctx: CtxDep, runtime: FlatRuntime, force: Force = False) -> Deleted:
    return Deleted(id=str(await service.delete(ctx, runtime, force=force)))


@flat.post("/{runtime_id}/start", response_model=StartOut, responses=errors(400, 404, 409, 429, 503))
async def start_flat(
    ctx: CtxDep,
    p: PrincipalDep,
    runtime_id: str,
    request: Request,
    body: StartRequest | None = None,
    idempotency_key: IdempotencyKey = None,
):
    """Start the runtime and open a run; starting an active runtime returns its current run (`started: false`)."""

    async def handler():
        # The run (new, or the active one) and its run-scoped connection.
        started = await service.start(ctx, p, runtime_id, recording=body.recording if body else None)
        connection = await connections.run_connection(ctx, started.runtime, started.run)
        return 200, dump(
            StartOut(
                runtime_id=str(started.runtime.id),
                run_id=str(started.run.id),
                status=started.runtime.status,
                started=started.started,
            ),
            **_connection_fields(connection),
        )

    return await idempotency.serve(
        ctx.db, p.account_id, request, idempotency_key, body.model_dump(mode="json") if body else None, handler
    )


@flat.post("/{runtime_id}/stop", response_model=StopOut, responses=errors(404, 409))
async def stop_flat(ctx: CtxDep, runtime: FlatRuntime) -> StopOut:
    stopped = await service.stop(ctx, runtime)
    return StopOut(
        runtime_id=str(stopped.runtime.id),
        run_id=str(stopped.run_id) if stopped.run_id else None,
        status=stopped.runtime.status,
        stopped=stopped.stopped,
    )

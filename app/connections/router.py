from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.accounts.auth import CtxDep
from app.connections import service
from app.connections.schemas import ConnectionCreate, ConnectionList, ConnectionOut
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.runtimes.paths import SeedRuntime

router = APIRouter(prefix="/v1/spaces/{space_id}/runtimes/{runtime_id}/connections", tags=["connections"])


@router.post("", status_code=201, response_model=ConnectionOut, responses=errors(400, 404, 409))
async def create_connection(ctx: CtxDep, runtime: SeedRuntime, body: ConnectionCreate) -> ConnectionOut:
    """Lease the runtime's CDP endpoint. `endpoint.url` is in this response only; the lease holds the
    controller lock until it is revoked, expires or the runtime stops (409 `runtime.controller_busy`
    names the current holder otherwise). No Idempotency-Key here: the URL's secret is never stored,
    so a replay could not show it; a retry after a lost response gets 409 naming the first lease."""
    connection, endpoint = await service.create_lease(ctx, runtime, body)
    return ConnectionOut.of(connection, endpoint)


@router.get("", response_model=ConnectionList, responses=errors(400, 404))
async def list_connections(
    ctx: CtxDep, runtime: SeedRuntime, page: Annotated[PageParams, Depends(page_params)]
) -> ConnectionList:
    """Leases of the runtime, metadata only (never the URL)."""
    rows, cursor = await service.list_leases(ctx, runtime, page)
    return ConnectionList.of(rows, cursor)


@router.get("/{connection_id}", response_model=ConnectionOut, responses=errors(404))
async def get_connection(ctx: CtxDep, runtime: SeedRuntime, connection_id: str) -> ConnectionOut:
    return ConnectionOut.of(await service.get_lease(ctx, runtime, connection_id))


@router.delete("/{connection_id}", response_model=ConnectionOut, responses=errors(404))
async def revoke_connection(ctx: CtxDep, runtime: SeedRuntime, connection_id: str) -> ConnectionOut:
    """Revoke (idempotent): new attaches are refused at once and the controller lock is released;
    sockets already open stay until the lease's expiresAt."""
    return ConnectionOut.of(await service.revoke(ctx, runtime, connection_id))

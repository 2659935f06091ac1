from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.connections import service
from app.connections.schemas import ConnectionCreate, ConnectionList, ConnectionOut
from app.core import idempotency
from app.core.auth import CtxDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import IdempotencyKey, errors

router = APIRouter(prefix="/v1/spaces/{space_id}/runtimes/{runtime_id}/connections", tags=["connections"])


@router.post("", status_code=201, response_model=ConnectionOut, responses=errors(400, 404, 409))
async def create_connection(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str, body: ConnectionCreate,
                            request: Request, idempotency_key: IdempotencyKey = None):
    """Lease the runtime's CDP endpoint. `endpoint.url` is in this response only; the lease holds the
    controller lock until it is revoked, expires or the runtime stops (409 `runtime.controller_busy`
    names the current holder otherwise)."""
    async def handler():
        connection, endpoint = await service.create_lease(ctx, p, space_id, runtime_id, body)
        return 201, ConnectionOut.of(connection, endpoint).model_dump(mode="json")

    return await idempotency.serve(ctx.db, p.account_id, request, idempotency_key, body.model_dump(mode="json"),
                                   handler)


@router.get("", response_model=ConnectionList, responses=errors(400, 404))
async def list_connections(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str,
                           page: Annotated[PageParams, Depends(page_params)]) -> ConnectionList:
    """Leases of the runtime, metadata only (never the URL)."""
    rows, cursor = await service.list_leases(ctx, p, space_id, runtime_id, page)
    items = [ConnectionOut.of(c) for c in rows]
    return ConnectionList(data=items, connections=items, next_cursor=cursor)


@router.get("/{connection_id}", response_model=ConnectionOut, responses=errors(404))
async def get_connection(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str,
                         connection_id: str) -> ConnectionOut:
    return ConnectionOut.of(await service.get_lease(ctx, p, space_id, runtime_id, connection_id))


@router.delete("/{connection_id}", response_model=ConnectionOut, responses=errors(404))
async def revoke_connection(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str,
                            connection_id: str) -> ConnectionOut:
    """Revoke (idempotent): new attaches are refused at once and the controller lock is released;
    sockets already open stay until the lease's expiresAt."""
    return ConnectionOut.of(await service.revoke(ctx, p, space_id, runtime_id, connection_id))

"""AI connections in both shapes: seed /v1/ai-connections and flat /v1/ai/credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.ai import service
from app.ai.schemas import AiConnectionCreate, AiConnectionList, AiConnectionOut, AiConnectionTest, AiConnectionUpdate
from app.core.paging import PageParams, page_params
from app.core.schemas import Deleted, errors


def _routes(prefix: str, tag: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[tag])

    @router.get("", response_model=AiConnectionList, responses=errors(400))
    async def list_connections(ctx: CtxDep, p: PrincipalDep, page: Annotated[PageParams, Depends(page_params)]):
        rows, cursor = await service.list_connections(ctx, p, page)
        return AiConnectionList.of(rows, cursor)

    @router.post("", status_code=201, response_model=AiConnectionOut, responses=errors(400))
    async def create_connection(ctx: CtxDep, p: PrincipalDep, body: AiConnectionCreate):
        """`apiKey` is stored encrypted and never returned; `hasStoredKey` says whether one is kept."""
        return AiConnectionOut.of(await service.create(ctx, p, body))

    @router.get("/{connection_id}", response_model=AiConnectionOut, responses=errors(404))
    async def get_connection(ctx: CtxDep, p: PrincipalDep, connection_id: str):
        return AiConnectionOut.of(await service.get(ctx, p, connection_id))

    @router.patch("/{connection_id}", response_model=AiConnectionOut, responses=errors(400, 404))
    async def update_connection(ctx: CtxDep, p: PrincipalDep, connection_id: str, body: AiConnectionUpdate):
        return AiConnectionOut.of(await service.update(ctx, p, connection_id, body))

    @router.delete("/{connection_id}", response_model=Deleted, responses=errors(404))
    async def delete_connection(ctx: CtxDep, p: PrincipalDep, connection_id: str):
        return Deleted(id=str(await service.delete(ctx, p, connection_id)))

    @router.post("/{connection_id}/test", response_model=AiConnectionTest, responses=errors(404))
    async def test_connection(ctx: CtxDep, p: PrincipalDep, connection_id: str):
        """Asks the endpoint for its model list with the stored key (no tokens are spent)."""
        ok, message, provider = await service.test(ctx, p, connection_id)
        return AiConnectionTest(ok=ok, message=message, provider=provider)

    return router


seed = _routes("/v1/ai-connections", "ai connections")
flat = _routes("/v1/ai/credentials", "ai credentials (flat)")
routers = (seed, flat)

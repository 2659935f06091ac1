"""Path objects: the space a route's path or `?spaceId` names, resolved once by the router (an unknown
id, or another account's, is 404 before the handler runs; `default` is the account's default space)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from app.accounts.auth import CtxDep, PrincipalDep
from app.spaces import service
from app.spaces.models import Space


async def path_space(ctx: CtxDep, p: PrincipalDep, space_id: str) -> Space:
    return await service.get(ctx, p, space_id)


async def query_space(
    ctx: CtxDep,
    p: PrincipalDep,
    space_id: Annotated[
        str | None, Query(alias="spaceId", description="Space id or `default`; default space when absent")
    ] = None,
) -> Space:
    return await service.resolve(ctx, p, space_id)


async def query_space_filter(
    ctx: CtxDep,
    p: PrincipalDep,
    space_id: Annotated[str | None, Query(alias="spaceId", description="Only this space (id or `default`)")] = None,
) -> Space | None:
    return None if space_id is None else await service.get(ctx, p, space_id)


PathSpace = Annotated[Space, Depends(path_space)]
QuerySpace = Annotated[Space, Depends(query_space)]
SpaceFilter = Annotated[Space | None, Depends(query_space_filter)]

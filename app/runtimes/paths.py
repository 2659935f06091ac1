"""Path objects: the runtime a route's path names, resolved once by the router (an unknown id, or
another account's, is 404 before the handler runs), so services take the row, not ids and shapes.

Used where the route has no body or query a client could also get wrong: FastAPI resolves these
dependencies before it validates a body, and a request wrong in both ways keeps answering 400.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.runtimes import service
from app.runtimes.models import Runtime


async def seed_runtime(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str) -> Runtime:
    return await service.get(ctx, p, runtime_id, space_id=space_id)


async def flat_runtime(ctx: CtxDep, p: PrincipalDep, runtime_id: str) -> Runtime:
    return await service.get(ctx, p, runtime_id)


SeedRuntime = Annotated[Runtime, Depends(seed_runtime)]
FlatRuntime = Annotated[Runtime, Depends(flat_runtime)]

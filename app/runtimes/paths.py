"""Path objects: the runtime a route's path names, resolved once by the router (an unknown id, or
another account's, is 404 before the handler runs), so services take the row, not ids and shapes.

FastAPI resolves these before it validates a body, so a request wrong in both ways (unknown id, bad
body) answers 404 (docs/decisions.md). So far they serve routes without a body, where nothing changes.
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

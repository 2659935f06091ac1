"""Path objects: the runtime a route's path names, resolved once by the router (an unknown id, another
account's, or one outside the path's space is 404 before the handler runs), so services take the row,
not ids and shapes.

FastAPI resolves these before it validates a body, so a request wrong in both ways (unknown id, bad
body) answers 404 (docs/decisions.md, "One house").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.runtimes import service
from app.runtimes.lifecycle import runtime_not_found
from app.runtimes.models import Runtime
from app.spaces.paths import PathSpace


async def seed_runtime(ctx: CtxDep, p: PrincipalDep, space: PathSpace, runtime_id: str) -> Runtime:
    runtime = await service.get(ctx, p, runtime_id)
    if runtime.space_id != space.id:
        raise runtime_not_found(runtime_id)
    return runtime


async def flat_runtime(ctx: CtxDep, p: PrincipalDep, runtime_id: str) -> Runtime:
    return await service.get(ctx, p, runtime_id)


SeedRuntime = Annotated[Runtime, Depends(seed_runtime)]
FlatRuntime = Annotated[Runtime, Depends(flat_runtime)]

"""Path objects: the run a route's path names, resolved once by the router (an unknown id, or
another account's, is 404 before the handler runs), as for runtimes (runtimes/paths.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.runs import service
from app.runs.models import Run


async def path_run(ctx: CtxDep, p: PrincipalDep, run_id: str) -> Run:
    return await service.get(ctx, p, run_id)


PathRun = Annotated[Run, Depends(path_run)]

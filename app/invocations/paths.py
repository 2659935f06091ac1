"""Path objects: the invocation a route's path names, resolved once by the router (an unknown id,
another account's, or a command that is not an invocation is 404 before the handler runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.invocations import service
from app.runs.command_models import Command


async def path_invocation(ctx: CtxDep, p: PrincipalDep, invocation_id: str) -> Command:
    return await service.get(ctx, p, invocation_id)


PathInvocation = Annotated[Command, Depends(path_invocation)]

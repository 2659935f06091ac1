"""Bearer authentication as a FastAPI dependency (the accounts package decides who a key is)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts.service import Principal, authenticate
from app.core.context import AppContext, CtxDep, get_ctx

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bctrl_...`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Principal:
    return await authenticate(ctx.db, credentials.credentials if credentials else None, ctx.api_keys)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
__all__ = ["CtxDep", "PrincipalDep", "current_principal"]

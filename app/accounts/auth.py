"""Request dependencies: Bearer authentication (the accounts package decides who a key is) and the
Idempotency-Key scope of the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts.service import Principal, authenticate
from app.core.context import AppContext, CtxDep, get_ctx
from app.core.idempotency import Idempotency
from app.core.schemas import IdempotencyKey

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bctrl_...`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Principal:
    return await authenticate(ctx.db, credentials.credentials if credentials else None, ctx.api_keys)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def idempotency_scope(
    request: Request, ctx: CtxDep, p: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> Idempotency:
    route = request.scope.get("route")  # the matched route: its declared success status is what a replay repeats
    return Idempotency(
        db=ctx.db,
        account_id=p.account_id,
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
        status=getattr(route, "status_code", None) or 200,
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency_scope)]
__all__ = ["CtxDep", "IdempotencyDep", "PrincipalDep", "current_principal"]

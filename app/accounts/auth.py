"""Request dependencies: Bearer authentication (the accounts package decides who a key is) and the
Idempotency-Key scope of the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts import scopes
from app.accounts.service import Principal, authenticate
from app.core.context import AppContext, CtxDep, acting_key, get_ctx
from app.core.errors import DomainError
from app.core.idempotency import Idempotency
from app.core.schemas import IdempotencyKey

# A parent account's key acts in one of its subaccounts with this header (the 0.3 client's
# `bctrl_subaccount_id`).
SUBACCOUNT_HEADER = "BCTRL-Subaccount-Id"
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bctrl_...`")


async def key_principal(request: Request, ctx: AppContext, secret: str | None) -> Principal:
    """The principal of an API key for this request: its tenant (BCTRL-Subaccount-Id), its scopes
    checked against the request, and writes refused in an archived subaccount."""
    p = await authenticate(ctx.db, secret, ctx.api_keys, request.headers.get(SUBACCOUNT_HEADER))
    scopes.check(p.scopes, request.method, request.url.path)
    if p.archived and request.method not in scopes.READ_METHODS:
        raise DomainError(
            "The subaccount is archived: its records can be read, nothing new can be done in it",
            code="subaccount.archived",
            status=403,
            details={"subaccountId": str(p.account_id)},
        )
    acting_key.set(p.key_id)
    return p


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Principal:
    return await key_principal(request, ctx, credentials.credentials if credentials else None)


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
        secret=ctx.signing_key,
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency_scope)]
__all__ = ["CtxDep", "IdempotencyDep", "PrincipalDep", "current_principal", "key_principal"]

"""The account surface of the current generation: whoami, help, the account's settings and API keys.

API keys: the secret is returned once (only its SHA-256 digest is stored, app/accounts/keys.py); a
revoked key is refused from the next request on; a key cannot revoke itself (rotation is create, cut
over, revoke the old key with the new one), so an account always keeps a working key."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from app.accounts import branding, usage
from app.accounts import service as accounts
from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.accounts.models import Account, ApiKey
from app.core.errors import Conflict, NotFound
from app.core.generation import CurrentRoute
from app.core.idempotency import fingerprint, respond
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current import account_help
from app.current.account_schemas import (
    AccountOut,
    AccountUpdate,
    ApiKeyCreate,
    ApiKeyCreatedOut,
    ApiKeyDeletedOut,
    ApiKeyOut,
    ApiKeyPage,
    Audience,
    BrandingConfigOut,
    BrandingOut,
    EffectiveScope,
    HelpOverviewOut,
    HelpTopicDetailOut,
    ResolvedBrandingOut,
    WhoAmIOut,
)
from app.current.schemas import Order
from app.current.spaces import HeaderSpace
from app.spaces import service as spaces

# /v1/auth/whoami is shared with the earlier generations: matched only by current requests, out of
# /openapi.json (as app/current/runs.py). The other paths are this generation's alone.
whoami_router = APIRouter(prefix="/v1/auth", tags=["auth (current)"], route_class=CurrentRoute, include_in_schema=False)
keys_router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
account_router = APIRouter(prefix="/v1/account", tags=["account"])
help_router = APIRouter(prefix="/v1/help", tags=["help"])
routers = (whoami_router, keys_router, account_router, help_router)

Page = Annotated[PageParams, Depends(page_params)]
DEFAULT_KEY_NAME = "api key"


@whoami_router.get("/whoami", response_model=WhoAmIOut, responses=errors(404))
async def whoami(ctx: CtxDep, p: PrincipalDep, scoped: HeaderSpace) -> WhoAmIOut:
    """The key behind the request and its account. `effectiveScope.defaultSpaceId` is the space
    `BCTRL-Space` names (404 when it names none of the account's), else the account's default space."""
    default = await spaces.default_space(ctx, p)
    return WhoAmIOut(
        organization_id=str(p.account_id),
        key_id=str(p.key_id),
        default_space_id=str(default.id),
        effective_scope=EffectiveScope(organization_id=str(p.account_id), default_space_id=str((scoped or default).id)),
    )


# --- API keys -------------------------------------------------------------------------------------


def key_out(key: ApiKey) -> ApiKeyOut:
    """The key as stored, plus the uses this process counted and has not written yet."""
    seen = usage.last_seen(key.id)
    last = max((t for t in (key.last_used_at, seen) if t is not None), default=None)
    return ApiKeyOut(
        id=str(key.id),
        name=key.name,
        key_prefix=key.prefix,
        expires_at=key.expires_at,
        last_used_at=last,
        usage_count=(key.usage_count or 0) + usage.unwritten(key.id),
        created_at=key.created_at,
        updated_at=key.updated_at or key.created_at,
    )


async def path_key(ctx: CtxDep, p: PrincipalDep, key_id: str) -> ApiKey:
    return await accounts.get_key(ctx.db, p.account_id, key_id)


PathKey = Annotated[ApiKey, Depends(path_key)]


@keys_router.get("", response_model=ApiKeyPage, responses=errors(400, 404))
async def list_api_keys(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    _scope: HeaderSpace,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
    type: Annotated[Literal["organization", "subaccount", "agent"] | None, Query()] = None,
    subaccount_id: Annotated[str | None, Query(alias="subaccountId", max_length=64)] = None,
) -> ApiKeyPage:
    """The account's keys that are not revoked (expired ones included). Every key here is an
    organization key; there are no subaccounts (a `subaccountId` is 404 `subaccount.not_found`)."""
    if subaccount_id is not None:
        raise NotFound("Subaccount not found", code="subaccount.not_found", details={"subaccountId": subaccount_id})
    if type not in (None, "organization"):
        return ApiKeyPage(data=[], has_more=False)
    rows, cursor = await accounts.list_keys(ctx.db, p.account_id, page, newest_first=order == "desc")
    return ApiKeyPage(data=[key_out(k) for k in rows], has_more=cursor is not None, next_cursor=cursor)


@keys_router.post("", status_code=201, response_model=ApiKeyCreatedOut, responses=errors(400, 409))
async def create_api_key(
    ctx: CtxDep, p: PrincipalDep, body: ApiKeyCreate, idem: IdempotencyDep, response: Response
) -> ApiKeyCreatedOut:
    """Mint an organization key; the secret is in this answer only. A replay of the same request with
    the same Idempotency-Key answers the same key with a fresh secret (the one it had stops working):
    secrets are never stored, not even for a replay. A replay after that key was revoked is 409.
    `expiresAt` must be in the future (400)."""

    async def mint() -> ApiKeyCreatedOut:
        key, secret = await accounts.mint_key(
            ctx.db, p.account_id, body.name or DEFAULT_KEY_NAME, expires_at=body.expires_at
        )
        return ApiKeyCreatedOut(data=key_out(key), secret=secret)

    if idem.key is None:
        return await mint()
    made: ApiKeyCreatedOut | None = None

    async def first() -> tuple[int, dict]:
        nonlocal made
        made = await mint()
        return idem.status, {**made.model_dump(mode="json"), "secret": None}  # what a replay may know

    answer = await respond(
        idem.db, idem.account_id, idem.key, fingerprint(idem.method, idem.path, body.model_dump(mode="json")), first
    )
    if made is not None:
        return made
    stored = orjson.loads(answer.body)
    try:
        made_before = await accounts.get_key(ctx.db, p.account_id, stored["data"]["id"])
        key, secret = await accounts.reissue_key(ctx.db, made_before)
    except NotFound:
        raise Conflict(
            "The key this request created has been revoked since; send a new Idempotency-Key for a new key",
            code="resource.conflict",
            details={"keyId": stored["data"]["id"], "idempotencyKey": idem.key},
        ) from None
    response.headers["Idempotency-Replayed"] = "true"
    return ApiKeyCreatedOut(data=key_out(key), secret=secret)


@keys_router.delete("/{key_id}", response_model=ApiKeyDeletedOut, responses=errors(403, 404, 409))
async def delete_api_key(ctx: CtxDep, p: PrincipalDep, key: PathKey, idem: IdempotencyDep) -> ApiKeyDeletedOut:
    """Revoke the key at once. The key making the request cannot revoke itself, and the bootstrap key
    (BCTRL_API_KEY) is retired by changing the variable: both 403 `auth.forbidden`."""

    async def make() -> ApiKeyDeletedOut:
        return ApiKeyDeletedOut(id=str((await accounts.revoke_key(ctx.db, p, key)).id))

    return await idem.once(make, {"keyId": str(key.id)})


# --- the account's settings -----------------------------------------------------------------------


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=str(account.id),
        name=account.name,
        branding=BrandingOut(
            config=BrandingConfigOut.model_validate(branding.config(account.branding)),
            resolved=ResolvedBrandingOut.model_validate(branding.resolve(account.branding)),
        ),
        created_at=account.created_at,
        updated_at=account.updated_at or account.created_at,
    )


@account_router.get("", response_model=AccountOut, responses=errors())
async def get_account(ctx: CtxDep, p: PrincipalDep) -> AccountOut:
    """The account's settings as set (`branding.config`) and as resolved with the defaults."""
    return account_out(await accounts.get_account(ctx.db, p.account_id))


@account_router.patch("", response_model=AccountOut, responses=errors(400, 409))
async def update_account(
    ctx: CtxDep,
    p: PrincipalDep,
    body: AccountUpdate,
    idem: IdempotencyDep,
    dry_run: Annotated[bool, Query(alias="dryRun", description="Validate and resolve without storing")] = False,
) -> AccountOut:
    """JSON Merge Patch of the settings: a null removes a setting (`branding: null` all of them). A logo
    the account's pages could not show (its origin cannot be named in their Content-Security-Policy:
    credentials, a `*`, an IPv6 or non-ASCII host, ...) is 400 `branding.logo_unsafe`, dry run or not,
    and nothing is stored."""
    if "branding" not in body.model_fields_set:
        changes: dict = {}
    elif body.branding is None:
        changes = dict.fromkeys(branding.SETTINGS)
    else:
        changes = body.branding.model_dump(exclude_unset=True, by_alias=True)

    async def make() -> AccountOut:
        return account_out(await accounts.set_branding(ctx.db, p.account_id, changes, dry_run=dry_run))

    if dry_run:
        return await make()
    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


# --- help -----------------------------------------------------------------------------------------


@help_router.get("", response_model=HelpOverviewOut | HelpTopicDetailOut, responses=errors(404))
async def get_help(
    request: Request,
    _p: PrincipalDep,
    topic: Annotated[str | None, Query(max_length=200, description="e.g. browsers.create")] = None,
    audience: Annotated[Audience | None, Query()] = None,
) -> HelpOverviewOut | HelpTopicDetailOut:
    """The operations this server serves in this generation, or one of them (`topic`); an unknown
    topic is 404 `help.not_found`."""
    if topic is None:
        return account_help.overview(request.app, audience)
    return account_help.topic(request.app, topic, audience)

"""The account surface of the current generation: whoami, help, the account's settings and API keys.

API keys: the secret is returned once (only its SHA-256 digest is stored, app/accounts/keys.py); a
revoked key is refused from the next request on; a key cannot revoke itself (rotation is create, cut
over, revoke the old key with the new one), so an account always keeps a working key."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from app.accounts import branding, scopes, tenants, usage
from app.accounts import service as accounts
from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.accounts.models import Account, AccountStatus, ApiKey
from app.connections import revocation
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
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
    scope = "subaccount" if p.in_subaccount else "organization"
    subaccount_id = str(p.subaccount_id) if p.subaccount_id else None
    return WhoAmIOut(
        organization_id=str(p.org_id),
        key_id=str(p.key_id),
        scope=scope,
        subaccount_id=subaccount_id,
        default_space_id=str(default.id),
        effective_scope=EffectiveScope(
            organization_id=str(p.org_id),
            scope=scope,
            subaccount_id=subaccount_id,
            default_space_id=str((scoped or default).id),
        ),
    )


# --- API keys -------------------------------------------------------------------------------------


def key_out(key: ApiKey, subaccount: bool = False) -> ApiKeyOut:
    """The key as stored, plus the uses this process counted and has not written yet. `subaccount`: its
    account is a subaccount."""
    seen = usage.last_seen(key.id)
    last = max((t for t in (key.last_used_at, seen) if t is not None), default=None)
    return ApiKeyOut(
        id=str(key.id),
        type="subaccount" if subaccount else "organization",
        scopes=list(key.scopes or ()),
        subaccount_id=str(key.account_id) if subaccount else None,
        name=key.name,
        key_prefix=key.prefix,
        expires_at=key.expires_at,
        last_used_at=last,
        usage_count=(key.usage_count or 0) + usage.unwritten(key.id),
        created_at=key.created_at,
        updated_at=key.updated_at or key.created_at,
    )


async def keys_out(ctx: CtxDep, keys: list[ApiKey]) -> list[ApiKeyOut]:
    parents = await accounts.parents_of(ctx.db, {k.account_id for k in keys})
    return [key_out(k, parents.get(k.account_id) is not None) for k in keys]


async def path_key(ctx: CtxDep, p: PrincipalDep, key_id: str) -> ApiKey:
    """A key of the tenant acted in; an organization's key also reaches its subaccounts' keys."""
    return await accounts.get_key(ctx.db, p.account_id, key_id, or_child_of=not p.in_subaccount)


PathKey = Annotated[ApiKey, Depends(path_key)]


@keys_router.get("", response_model=ApiKeyPage, responses=errors(400, 403, 404))
async def list_api_keys(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    _scope: HeaderSpace,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
    type: Annotated[Literal["organization", "subaccount", "agent"] | None, Query()] = None,
    subaccount_id: Annotated[str | None, Query(alias="subaccountId", max_length=64)] = None,
) -> ApiKeyPage:
    """The keys that are not revoked (expired ones included): an organization's own and its
    subaccounts' (`type` picks one kind, `subaccountId` one subaccount's, 404 `subaccount.not_found`
    when it is not one of them); in a subaccount, its own (another `subaccountId` is 403
    `api_keys.subaccount_access_denied`). There are no agent keys here."""
    account_id, own, children = p.account_id, True, False
    if type == "agent" or (type == "organization" and (p.in_subaccount or subaccount_id is not None)):
        return ApiKeyPage(data=[], has_more=False)
    if subaccount_id is not None:
        if p.in_subaccount:
            if subaccount_id != str(p.account_id):  # whatever it names: a subaccount sees its own keys only
                raise DomainError(
                    "A subaccount lists its own keys only",
                    code="api_keys.subaccount_access_denied",
                    status=403,
                    details={"subaccountId": subaccount_id},
                )
        else:
            account_id = (await tenants.find(ctx.db, p.account_id, subaccount_id)).id
    elif not p.in_subaccount:
        own, children = type != "subaccount", type != "organization"
    rows, cursor = await accounts.list_keys(
        ctx.db, account_id, page, newest_first=order == "desc", own=own, children=children
    )
    data = await keys_out(ctx, rows)
    return ApiKeyPage(data=data, has_more=cursor is not None, next_cursor=cursor)


def _not_yours(subaccount_id: str) -> DomainError:
    # api-keys create documents no 404: a subaccount that is not the caller's is refused as such.
    return DomainError(
        "subaccountId names no subaccount of this organization",
        code="api_keys.subaccount_access_denied",
        status=403,
        details={"subaccountId": subaccount_id},
    )


async def key_owner(ctx: CtxDep, p: PrincipalDep, body: ApiKeyCreate) -> Account:
    """The account a new key belongs to: the tenant acted in, or the subaccount `subaccountId` names."""
    wants_sub = body.type == "subaccount" or body.subaccount_id is not None
    if not wants_sub:
        if p.in_subaccount and body.type == "organization":
            raise DomainError(
                "An organization key is made with the organization's key, without BCTRL-Subaccount-Id",
                code="api_keys.subaccount_access_denied",
                status=403,
                details={"subaccountId": str(p.account_id)},
            )
        return await accounts.get_account(ctx.db, p.account_id)
    if p.in_subaccount:
        if body.subaccount_id is not None and body.subaccount_id != str(p.account_id):
            raise _not_yours(body.subaccount_id)
        return await accounts.get_account(ctx.db, p.account_id)
    if body.subaccount_id is None:
        raise InvalidRequest(
            "A subaccount key names its subaccount: send subaccountId (or BCTRL-Subaccount-Id)",
            details={"fields": [{"field": "subaccountId", "in": "body", "message": "required", "type": "missing"}]},
        )
    try:
        sub = await tenants.find(ctx.db, p.account_id, body.subaccount_id)
    except NotFound:
        raise _not_yours(body.subaccount_id) from None
    if sub.status == AccountStatus.ARCHIVED:
        raise DomainError(
            "The subaccount is archived: no new keys",
            code="subaccount.archived",
            status=403,
            details={"subaccountId": str(sub.id)},
        )
    return sub


@keys_router.post("", status_code=201, response_model=ApiKeyCreatedOut, responses=errors(400, 403, 404, 409))
async def create_api_key(
    request: Request, ctx: CtxDep, p: PrincipalDep, body: ApiKeyCreate, idem: IdempotencyDep, response: Response
) -> ApiKeyCreatedOut:
    """Mint a key; the secret is in this answer only. A replay of the same request with
    the same Idempotency-Key answers the same key with a fresh secret (the one it had stops working):
    secrets are never stored, not even for a replay. A replay after that key was revoked is 409.
    `expiresAt` must be in the future (400). A key cannot make a key with scopes it does not hold
    (403 `auth.forbidden`); a scope naming no area of this API is 400."""
    owner = await key_owner(ctx, p, body)
    wanted = scopes.normalised(body.scopes)
    # The API description is built on first use (seconds): only a key with area scopes needs it.
    areas = api_areas(request) if any(":" in w for w in wanted) else set()
    unknown = [w for w in wanted if ":" in w and w.partition(":")[0] not in areas]
    if unknown:
        raise InvalidRequest(
            f"Unknown scope area: {', '.join(unknown)}",
            details={"fields": [{"field": "scopes", "in": "body", "message": "unknown area", "type": "value"}]},
        )
    scopes.check_widening(p.scopes, wanted)
    subaccount = owner.parent_id is not None

    async def mint() -> ApiKeyCreatedOut:
        key, secret = await accounts.mint_key(
            ctx.db, owner.id, body.name or DEFAULT_KEY_NAME, expires_at=body.expires_at, scopes=wanted
        )
        return ApiKeyCreatedOut(data=key_out(key, subaccount), secret=secret)

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
        made_before = await accounts.get_key(ctx.db, owner.id, stored["data"]["id"])
        key, secret = await accounts.reissue_key(ctx.db, made_before)
    except NotFound:
        raise Conflict(
            "The key this request created has been revoked since; send a new Idempotency-Key for a new key",
            code="resource.conflict",
            details={"keyId": stored["data"]["id"], "idempotencyKey": idem.key},
        ) from None
    response.headers["Idempotency-Replayed"] = "true"
    return ApiKeyCreatedOut(data=key_out(key, subaccount), secret=secret)


def api_areas(request: Request) -> set[str]:
    """The areas scopes may name: the first segments of the paths this server serves."""
    paths = set(request.app.openapi()["paths"]) | {getattr(r, "path", "") for r in request.app.routes}
    return {scopes.area_of(path) for path in paths if path}


@keys_router.delete("/{key_id}", response_model=ApiKeyDeletedOut, responses=errors(403, 404, 409))
async def delete_api_key(ctx: CtxDep, p: PrincipalDep, key: PathKey, idem: IdempotencyDep) -> ApiKeyDeletedOut:
    """Revoke the key at once: its next request is 401, and the CDP sockets of the leases it made
    close (on this server at once, on other servers within their sweep interval). The key making the
    request cannot revoke itself, and the bootstrap key (BCTRL_API_KEY) is retired by changing the
    variable: both 403 `auth.forbidden`. An organization's key may revoke its subaccounts' keys."""

    async def make() -> ApiKeyDeletedOut:
        revoked = await accounts.revoke_key(ctx.db, p, key)
        await revocation.revoke_made_with(ctx, [revoked.id])
        return ApiKeyDeletedOut(id=str(revoked.id))

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
    # The MCP tools' names (app/mcp/catalog.py, handed over by app/main.py): the first call of a process
    # builds the catalog, seconds of CPU on a worker thread.
    tools = await request.app.state.mcp_tool_names(request.app)
    if topic is None:
        return account_help.overview(request.app, audience, tools)
    return account_help.topic(request.app, topic, audience, tools)

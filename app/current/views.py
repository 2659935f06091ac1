"""`/v1/views`: scoped, expiring, revocable links to one page showing a browser live, its events, its
recordings, its trace (a timeline) and its files (create, list, get, delete). The page and its data routes are `app/views/router.py`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import Field, model_validator

from app.accounts import service as accounts
from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep, _bearer, key_principal
from app.accounts.branding import resolve as resolve_branding
from app.core import ids
from app.core.errors import InvalidRequest, NotFound
from app.core.idempotency import fingerprint, respond
from app.core.paging import PageParams, page_params
from app.core.schemas import RequestModel, Timestamp, WireModel, errors
from app.current.account_schemas import ResolvedBrandingOut
from app.current.schemas import Order, page_model
from app.runs import service as runs
from app.runtimes import service as runtimes
from app.spaces import service as spaces
from app.views import input_requests as view_input_requests
from app.views import router as view_pages
from app.views import service, tokens
from app.views.models import View, ViewScopeKind

router = APIRouter(prefix="/v1/views", tags=["views"])
routers: tuple[APIRouter, ...] = (router, *view_pages.routers, *view_input_requests.routers)

Page = Annotated[PageParams, Depends(page_params)]
MAX_ORIGINS = 20
MAX_RUNTIME_IDS = 100


def _bad(field: str, message: str, kind: str = "value_error") -> InvalidRequest:
    return InvalidRequest(
        f"Invalid request: {field}: {message}",
        details={"fields": [{"field": field, "in": "body", "message": message, "type": kind}]},
    )


def _denied(component: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{component} cannot be shown in this view: {why}",
        code="view.component_denied",
        details={"component": component, "reason": why},
    )


# --- requests ---
# The scope and the presentation are unions of closed models, so the schema says what one holds. What
# this server cannot show is named in the schema by the one value it honours (false), and refused
# with its own code before the fields are checked (as the browsers' settings are).

Id = Annotated[str, Field(min_length=1, max_length=64)]
# An origin as a browser sends it: scheme, lower-case host, a port only when it is not the default.
_PORT = r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
ORIGIN_PATTERN = r"^https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])" + _PORT + "$"
Origin = Annotated[str, Field(min_length=1, max_length=200, pattern=ORIGIN_PATTERN)]


class SpaceScopeIn(RequestModel):
    space_id: Id
    runtime_ids: list[Id] | None = Field(default=None, max_length=MAX_RUNTIME_IDS)


class BrowserScopeIn(RequestModel):
    runtime_id: Annotated[str, Field(min_length=1, max_length=200)]


class RunScopeIn(RequestModel):
    run_id: Id


class ConversationScopeIn(RequestModel):
    conversation_id: Id


ScopeIn = SpaceScopeIn | BrowserScopeIn | RunScopeIn | ConversationScopeIn


class FilesIn(RequestModel):
    library: Literal[False] | None = None
    manage: Literal[False] | None = None
    read: bool | None = Field(default=None, description="List the shown run's files and download them")
    upload: Literal[False] | None = None
    use: Literal[False] | None = None


class ComponentsIn(RequestModel):
    bell: Literal[False] | None = None
    conversations: Literal[False] | None = None
    events: bool | None = None
    files: FilesIn | None = None
    recordings: bool | None = None
    trace: bool | None = None


class HostedIn(RequestModel):
    mode: Literal["hosted"]


class EmbeddedIn(RequestModel):
    mode: Literal["embedded"]
    allowed_origins: list[Origin] = Field(min_length=1, max_length=MAX_ORIGINS)


PresentationIn = Annotated[HostedIn | EmbeddedIn, Field(discriminator="mode")]

_WHY_NOT = {
    "bell": "the notification and action center is not offered by this server",
}
# File capabilities this server does not offer in a view (`read` it does), and why.
_FILES_WHY_NOT = {
    "library": "the space's file library is not offered in views by this server",
    "manage": "managing files is not offered in views by this server",
    "upload": "uploading files is not offered in views by this server",
    "use": "handing files to the browser is not offered in views by this server",
}


def _refuse_unsupported(data: Any) -> None:
    """What this server cannot show, each with its own code (before the schema's generic refusal)."""
    if not isinstance(data, dict):
        return
    components = data.get("components") if isinstance(data.get("components"), dict) else {}
    if components.get("conversations") is True:
        raise InvalidRequest(
            "conversations need a conversation scope, and this server has no agent conversations",
            code="view.conversation_component_required",
            details={"component": "conversations"},
        )
    if data.get("conversationSend") is True:
        raise InvalidRequest(
            "conversationSend needs the conversations component, which this server does not offer",
            code="view.conversation_component_required",
            details={"field": "conversationSend"},
        )
    for name, why in _WHY_NOT.items():
        if components.get(name) is True:
            raise _denied(name, why)
    files = components.get("files")
    if isinstance(files, dict):
        for name, why in _FILES_WHY_NOT.items():
            if files.get(name) is True:
                raise InvalidRequest(
                    f"files.{name} cannot be granted in this view: {why}; only files.read is",
                    code="view.file_capability_required",
                    details={"component": "files", "capability": name, "reason": why, "supported": ["read"]},
                )


class ViewCreate(RequestModel):
    scope: ScopeIn
    components: ComponentsIn | None = None
    control: bool | None = None
    conversation_send: Literal[False] | None = None
    expires_in_seconds: int | None = Field(default=None, ge=1, le=service.MAX_EXPIRY_SECONDS)
    presentation: PresentationIn | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported_first(cls, data: Any) -> Any:
        _refuse_unsupported(data)
        return data


# --- responses ---


class FilesOut(WireModel):
    library: bool = False
    manage: bool = False
    read: bool = False
    upload: bool = False
    use: bool = False


class ComponentsOut(WireModel):
    bell: bool
    events: bool
    recordings: bool
    trace: bool
    conversations: bool = False
    files: FilesOut = Field(default_factory=FilesOut)


class HostedPresentationOut(WireModel):
    mode: Literal["hosted"] = "hosted"


class EmbeddedPresentationOut(WireModel):
    mode: Literal["embedded"] = "embedded"
    allowed_origins: list[str]


class SpaceScopeOut(WireModel):
    space_id: str
    runtime_ids: list[str] | None = None


class BrowserScopeOut(WireModel):
    runtime_id: str


class RunScopeOut(WireModel):
    run_id: str
    runtime_id: str | None = None


class ViewOut(WireModel):
    id: str = Field(description="Public view id; safe in URLs and logs")
    object: Literal["view"] = "view"
    scope: SpaceScopeOut | BrowserScopeOut | RunScopeOut
    components: ComponentsOut
    control: bool
    conversation_send: bool | None = None
    presentation: HostedPresentationOut | EmbeddedPresentationOut
    branding: ResolvedBrandingOut = Field(
        description="The branding of the view's account, resolved as `GET /v1/account` resolves it"
    )
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp


class ViewBootstrapOut(ViewOut):
    space_name: str


class ViewCreatedOut(ViewOut):
    token: str = Field(description="The view's bearer token, shown this once; keep it private")
    url: str = Field(description="The view page (it carries the token)")


class ViewDeletedOut(WireModel):
    id: str
    object: Literal["view"] = "view"
    deleted: bool = True


ViewPage = page_model(ViewOut)


def _scope_out(view: View) -> SpaceScopeOut | BrowserScopeOut | RunScopeOut:
    if view.scope == ViewScopeKind.SPACE:
        return SpaceScopeOut(space_id=str(view.space_id), runtime_ids=view.runtime_ids)
    if view.scope == ViewScopeKind.BROWSER:
        return BrowserScopeOut(runtime_id=str(view.runtime_id))
    return RunScopeOut(run_id=str(view.run_id), runtime_id=str(view.runtime_id) if view.runtime_id else None)


async def account_branding(ctx, account_id: uuid.UUID) -> ResolvedBrandingOut:
    """The account's branding as its account answer resolves it (`branding.resolved`)."""
    account = await accounts.get_account(ctx.db, account_id)
    return ResolvedBrandingOut.model_validate(resolve_branding(account.branding))


def _fields(view: View, branding: ResolvedBrandingOut) -> dict[str, Any]:
    mode = view.presentation.get("mode")
    return {
        "id": str(view.id),
        "branding": branding,
        "scope": _scope_out(view),
        "components": ComponentsOut(
            **service.components_of(view), files=FilesOut(**service.file_capabilities_of(view))
        ),
        "control": view.control,
        "presentation": EmbeddedPresentationOut(allowed_origins=view.presentation["allowedOrigins"])
        if mode == "embedded"
        else HostedPresentationOut(),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "expires_at": view.expires_at,
    }


def view_out(view: View, branding: ResolvedBrandingOut) -> ViewOut:
    return ViewOut(**_fields(view, branding))


async def created_out(ctx, minted: service.Minted) -> ViewCreatedOut:
    return ViewCreatedOut(
        **_fields(minted.view, await account_branding(ctx, minted.view.account_id)),
        token=minted.token,
        url=service.page_url(ctx, minted.token),
    )


# --- scope and components: what the body asks, checked against what this server can show ---


async def _scope(ctx, p, scope: ScopeIn) -> service.ViewScope:
    if isinstance(scope, ConversationScopeIn):
        raise NotFound(
            "Conversation not found: this server has no agent conversations",
            code="conversation.not_found",
            details={"conversationId": scope.conversation_id},
        )
    if isinstance(scope, SpaceScopeIn):
        space = await spaces.get(ctx, p, scope.space_id)
        wanted = None
        if scope.runtime_ids is not None:
            wanted = []
            for runtime_id in dict.fromkeys(scope.runtime_ids):
                runtime = await runtimes.get(ctx, p, runtime_id)
                if runtime.space_id != space.id:
                    raise runtimes.runtime_not_found(runtime_id)
                wanted.append(runtime.id)
        return service.ViewScope(ViewScopeKind.SPACE, space, runtime_ids=wanted)
    if isinstance(scope, BrowserScopeIn):
        runtime = await runtimes.find(ctx, p, scope.runtime_id)
        return service.ViewScope(ViewScopeKind.BROWSER, await spaces.get(ctx, p, str(runtime.space_id)), runtime)
    run = await runs.get(ctx, p, scope.run_id)
    return service.ViewScope(ViewScopeKind.RUN, await spaces.get(ctx, p, str(run.space_id)), run=run)


def _components(body: ViewCreate) -> tuple[dict[str, bool], dict[str, bool]]:
    """The view's components and file capabilities (what it does not name, it does not include)."""
    given = body.components or ComponentsIn()
    components = {
        "events": bool(given.events),
        "recordings": bool(given.recordings),
        "trace": bool(given.trace),
        "bell": False,
    }
    return components, {"read": bool(given.files and given.files.read)}


# --- routes ---


@router.post("", status_code=201, response_model=ViewCreatedOut, responses=errors(400, 404, 409, 429))
async def create_view(ctx: CtxDep, p: PrincipalDep, body: ViewCreate, idem: IdempotencyDep):
    """Mint a view of a space, a browser or a run. Its `token` (and the `url` that carries it) is shown
    once; a retry with the same Idempotency-Key gets the same view with a fresh token."""
    components, files = _components(body)
    presentation = {"mode": "hosted"}
    if isinstance(body.presentation, EmbeddedIn):
        presentation = {"mode": "embedded", "allowedOrigins": list(dict.fromkeys(body.presentation.allowed_origins))}

    async def make() -> ViewCreatedOut:
        spec = service.ViewSpec(
            scope=await _scope(ctx, p, body.scope),
            components=components,
            files=files,
            control=bool(body.control),
            expires_in_seconds=body.expires_in_seconds or service.DEFAULT_EXPIRY_SECONDS,
            presentation=presentation,
        )
        return await created_out(ctx, await service.create(ctx, p, spec))

    if idem.key is None:
        return await make()
    made: ViewCreatedOut | None = None

    async def handler() -> tuple[int, Any]:
        nonlocal made
        made = await make()
        # What a replay gets back is the view without its token: the token is never stored in clear.
        return 201, made.model_dump(mode="json", exclude={"token", "url"})

    stored = await respond(
        ctx.db, p.account_id, idem.key, fingerprint("POST", "/v1/views", body.model_dump(mode="json")), handler
    )
    if made is not None:
        return made
    view = await service.get(ctx, p, str(orjson.loads(stored.body)["id"]))
    return await created_out(ctx, await service.reissue(ctx, view))


@router.get("", response_model=ViewPage, responses=errors(400))
async def list_views(
    ctx: CtxDep, p: PrincipalDep, page: Page, order: Annotated[Order, Query(description="By creation")] = "desc"
) -> ViewPage:
    """The account's active views (neither revoked nor expired), newest first by default."""
    rows, cursor = await service.list_views(ctx, p, page, newest_first=order == "desc")
    branding = await account_branding(ctx, p.account_id)
    return ViewPage(data=[view_out(v, branding) for v in rows], has_more=cursor is not None, next_cursor=cursor)


async def view_reader(
    request: Request,
    ctx: CtxDep,
    view_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    origin: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> View:
    """The view `{view_id}` names, read with an API key of its account or with its own bearer token
    (which reads only its own view, from an origin its presentation allows)."""
    raw = credentials.credentials if credentials else None
    if tokens.looks_like(raw):
        view = await service.authenticate(ctx, raw)
        if ids.parse_uuid(view_id) != view.id:
            raise service.view_not_found(view_id)
        service.check_origin(ctx, view, origin, None)
        return view
    p = await key_principal(request, ctx, raw)
    return await service.get(ctx, p, view_id)


@router.get("/{view_id}", response_model=ViewBootstrapOut, responses=errors(403, 404))
async def get_view(ctx: CtxDep, view: Annotated[View, Depends(view_reader)]) -> ViewBootstrapOut:
    """The view (never its token). Its own bearer token may read it too."""
    branding = await account_branding(ctx, view.account_id)
    return ViewBootstrapOut(**_fields(view, branding), space_name=await service.space_name(ctx, view))


async def path_view(ctx: CtxDep, p: PrincipalDep, view_id: str) -> View:
    # A revoked view too, so that a retried delete with its Idempotency-Key replays its answer.
    return await service.get(ctx, p, view_id, revoked=True)


@router.delete("/{view_id}", response_model=ViewDeletedOut, responses=errors(404, 409))
async def delete_view(ctx: CtxDep, view: Annotated[View, Depends(path_view)], idem: IdempotencyDep) -> ViewDeletedOut:
    """Revoke the view: its token stops working at once and its open pages stop."""

    async def make() -> ViewDeletedOut:
        return ViewDeletedOut(id=str((await service.revoke(ctx, view)).id))

    return await idem.once(make, {})

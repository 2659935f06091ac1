"""`/v1/views`: scoped, expiring, revocable links to one page showing a browser live, its events and its
recordings (create, list, get, delete). The page and its data routes are `app/views/router.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import Field, model_validator

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep, _bearer
from app.accounts.service import authenticate
from app.core import ids
from app.core.errors import InvalidRequest, NotFound
from app.core.idempotency import fingerprint, respond
from app.core.paging import PageParams, page_params
from app.core.schemas import RequestModel, Timestamp, WireModel, errors
from app.current.schemas import Order, page_model
from app.runs import service as runs
from app.runtimes import service as runtimes
from app.spaces import service as spaces
from app.views import router as view_pages
from app.views import service, tokens
from app.views.models import View, ViewScopeKind

router = APIRouter(prefix="/v1/views", tags=["views"])
routers: tuple[APIRouter, ...] = (router, *view_pages.routers)

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


class ScopeIn(RequestModel):
    """One of: `spaceId` (with optional `runtimeIds`), `runtimeId`, `runId`, `conversationId`."""

    space_id: str | None = Field(default=None, min_length=1, max_length=64)
    runtime_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=MAX_RUNTIME_IDS
    )
    runtime_id: str | None = Field(default=None, min_length=1, max_length=200)
    run_id: str | None = Field(default=None, min_length=1, max_length=64)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_scope(self) -> ScopeIn:
        named = [n for n in ("space_id", "runtime_id", "run_id", "conversation_id") if getattr(self, n) is not None]
        if len(named) != 1:
            raise _bad("scope", "name exactly one of spaceId, runtimeId, runId or conversationId")
        if self.runtime_ids is not None and self.space_id is None:
            raise _bad("scope.runtimeIds", "runtimeIds narrows a space scope (with spaceId)")
        return self


class FilesIn(RequestModel):
    library: bool | None = None
    manage: bool | None = None
    read: bool | None = None
    upload: bool | None = None
    use: bool | None = None


class ComponentsIn(RequestModel):
    bell: bool | None = None
    conversations: bool | None = None
    events: bool | None = None
    files: FilesIn | None = None
    recordings: bool | None = None
    trace: bool | None = None


class PresentationIn(RequestModel):
    mode: Literal["hosted", "embedded"]
    allowed_origins: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=MAX_ORIGINS
    )

    @model_validator(mode="after")
    def _origins(self) -> PresentationIn:
        if self.mode == "hosted":
            if self.allowed_origins is not None:
                raise _bad("presentation.allowedOrigins", "a hosted view takes no allowedOrigins; use embedded")
            return self
        if not self.allowed_origins:
            raise _bad("presentation.allowedOrigins", "an embedded view needs at least one allowed origin")
        for origin in self.allowed_origins:
            if service.origin_of(origin) != origin:
                raise _bad(
                    "presentation.allowedOrigins",
                    f"{origin[:80]!r} is not an origin (scheme://host[:port], lower-case, no path)",
                )
        return self


class ViewCreate(RequestModel):
    scope: ScopeIn
    components: ComponentsIn | None = None
    control: bool | None = None
    conversation_send: bool | None = None
    expires_in_seconds: int | None = Field(default=None, ge=1, le=service.MAX_EXPIRY_SECONDS)
    presentation: PresentationIn | None = None


# --- responses ---


class BrandingTokensOut(WireModel):
    accent: str = "#3b82f6"
    accent_border: str = "#2563eb"
    accent_soft: str = "#1c2533"
    bg: str = "#111111"
    border_strong: str = "#444444"
    hairline: str = "#2a2a2a"
    inset: str = "#0b0b0b"
    panel: str = "#161616"
    surface_raised: str = "#1b1b1b"
    text: str = "#dddddd"
    text_faint: str = "#777777"
    text_muted: str = "#999999"


class BrandingOut(WireModel):
    logo: str | None = None
    product_name: str = "BCTRL"
    show_powered_by: bool = False
    tokens: BrandingTokensOut = Field(default_factory=BrandingTokensOut)


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
    branding: BrandingOut = Field(default_factory=BrandingOut)
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


def _fields(view: View) -> dict[str, Any]:
    mode = view.presentation.get("mode")
    return {
        "id": str(view.id),
        "scope": _scope_out(view),
        "components": ComponentsOut(**{name: bool(view.components.get(name)) for name in service.COMPONENTS}),
        "control": view.control,
        "presentation": EmbeddedPresentationOut(allowed_origins=view.presentation["allowedOrigins"])
        if mode == "embedded"
        else HostedPresentationOut(),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "expires_at": view.expires_at,
    }


def view_out(view: View) -> ViewOut:
    return ViewOut(**_fields(view))


def created_out(ctx, minted: service.Minted) -> ViewCreatedOut:
    return ViewCreatedOut(**_fields(minted.view), token=minted.token, url=service.page_url(ctx, minted.token))


# --- scope and components: what the body asks, checked against what this server can show ---


async def _scope(ctx, p, scope: ScopeIn) -> service.ViewScope:
    if scope.conversation_id is not None:
        raise NotFound(
            "Conversation not found: this server has no agent conversations",
            code="conversation.not_found",
            details={"conversationId": scope.conversation_id},
        )
    if scope.space_id is not None:
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
    if scope.runtime_id is not None:
        runtime = await runtimes.find(ctx, p, scope.runtime_id)
        return service.ViewScope(ViewScopeKind.BROWSER, await spaces.get(ctx, p, str(runtime.space_id)), runtime)
    run = await runs.get(ctx, p, scope.run_id)
    return service.ViewScope(ViewScopeKind.RUN, await spaces.get(ctx, p, str(run.space_id)), run=run)


def _components(body: ViewCreate) -> dict[str, bool]:
    given = body.components or ComponentsIn()
    if given.conversations:
        raise InvalidRequest(
            "conversations need a conversation scope, and this server has no agent conversations",
            code="view.conversation_component_required",
            details={"component": "conversations"},
        )
    if body.conversation_send:
        raise InvalidRequest(
            "conversationSend needs the conversations component, which this server does not offer",
            code="view.conversation_component_required",
            details={"field": "conversationSend"},
        )
    if given.bell:
        raise _denied("bell", "the notification and action center is not offered by this server")
    if given.trace:
        raise _denied("trace", "traces are not shown in views by this server yet")
    if given.files is not None and any(given.files.model_dump().values()):
        raise InvalidRequest(
            "files cannot be shown in this view: file access in views is not offered by this server yet",
            code="view.file_capability_required",
            details={"component": "files"},
        )
    return {"events": bool(given.events), "recordings": bool(given.recordings), "bell": False, "trace": False}


# --- routes ---


@router.post("", status_code=201, response_model=ViewCreatedOut, responses=errors(400, 404, 409, 429))
async def create_view(ctx: CtxDep, p: PrincipalDep, body: ViewCreate, idem: IdempotencyDep):
    """Mint a view of a space, a browser or a run. Its `token` (and the `url` that carries it) is shown
    once; a retry with the same Idempotency-Key gets the same view with a fresh token."""
    components = _components(body)
    presentation = body.presentation.model_dump(exclude_none=True) if body.presentation else {"mode": "hosted"}

    async def make() -> ViewCreatedOut:
        spec = service.ViewSpec(
            scope=await _scope(ctx, p, body.scope),
            components=components,
            control=bool(body.control),
            expires_in_seconds=body.expires_in_seconds or service.DEFAULT_EXPIRY_SECONDS,
            presentation=presentation,
        )
        return created_out(ctx, await service.create(ctx, p, spec))

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
    return created_out(ctx, await service.reissue(ctx, view))


@router.get("", response_model=ViewPage, responses=errors(400))
async def list_views(
    ctx: CtxDep, p: PrincipalDep, page: Page, order: Annotated[Order, Query(description="By creation")] = "desc"
) -> ViewPage:
    """The account's active views (neither revoked nor expired), newest first by default."""
    rows, cursor = await service.list_views(ctx, p, page, newest_first=order == "desc")
    return ViewPage(data=[view_out(v) for v in rows], has_more=cursor is not None, next_cursor=cursor)


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
    p = await authenticate(ctx.db, raw, ctx.api_keys)
    return await service.get(ctx, p, view_id)


@router.get("/{view_id}", response_model=ViewBootstrapOut, responses=errors(403, 404))
async def get_view(ctx: CtxDep, view: Annotated[View, Depends(view_reader)]) -> ViewBootstrapOut:
    """The view (never its token). Its own bearer token may read it too."""
    return ViewBootstrapOut(**_fields(view), space_name=await service.space_name(ctx, view))


async def path_view(ctx: CtxDep, p: PrincipalDep, view_id: str) -> View:
    # A revoked view too, so that a retried delete with its Idempotency-Key replays its answer.
    return await service.get(ctx, p, view_id, revoked=True)


@router.delete("/{view_id}", response_model=ViewDeletedOut, responses=errors(404))
async def delete_view(ctx: CtxDep, view: Annotated[View, Depends(path_view)], idem: IdempotencyDep) -> ViewDeletedOut:
    """Revoke the view: its token stops working at once and its open pages stop."""

    async def make() -> ViewDeletedOut:
        return ViewDeletedOut(id=str((await service.revoke(ctx, view)).id))

    return await idem.once(make, {})

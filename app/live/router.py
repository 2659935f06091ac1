"""Live view and recording: the two lease routes, the viewer socket, the pages and the replay data.

The pages (live, replay, and the view page of app/views) carry the branding of the account whose link
opened them: its resolved settings are written into the page (HTML-escaped JSON in a meta element that
app/web/branding.js applies as text and CSS custom properties), and a logo's https origin, exactly, is
added to the page's img-src."""

from __future__ import annotations

import html
import uuid
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import Field
from starlette.responses import StreamingResponse

from app.accounts import service as accounts
from app.accounts.auth import CtxDep
from app.accounts.branding import logo_origin, resolve
from app.core import clock, openapi
from app.core.context import AppContext
from app.core.errors import NotFound, Unauthorized
from app.core.schemas import RequestModel, WireModel, errors
from app.live import service, tokens
from app.live.schemas import ReplayData
from app.runs.paths import PathRun
from app.storage import make_store
from app.storage.http import Download, serve
from app.views import service as views

WEB = Path(__file__).resolve().parents[1] / "web"
MAX_EXPIRY = 86_400

api = APIRouter(prefix="/v1", tags=["live view and recording"])
pages = APIRouter(include_in_schema=False)


class LiveIn(RequestModel):
    control: Literal["none", "input"] = "none"
    components: list[Literal["activity"]] | None = None
    expires_in_seconds: int = Field(default=3600, ge=1, le=MAX_EXPIRY)


class RecordingIn(RequestModel):
    components: list[Literal["activity"]] | None = None
    expires_in_seconds: int = Field(default=3600, ge=1, le=MAX_EXPIRY)


class LiveOut(WireModel):
    iframe_url: str = Field(description="The viewer page; embed it in an iframe or open it")
    url: str = Field(description="The same URL (the flat API's name)")
    expires_at: str
    control: str
    viewer_id: str


class RecordingOut(WireModel):
    iframe_url: str
    url: str
    expires_at: str
    status: Literal["not_available", "preparing", "processing", "ready", "failed"]
    duration_ms: int
    duration_seconds: float
    artifact_id: str | None = None
    failure: dict | None = None
    viewer_id: str = Field(description="Revoke the link early with DELETE /v1/runs/{runId}/viewers/{viewerId}")


class ViewerOut(WireModel):
    viewer_id: str
    kind: Literal["live", "replay"]
    control: str
    expires_at: str
    revoked_at: str | None


class RevokedViewers(WireModel):
    data: list[ViewerOut]


@api.post("/runs/{run_id}/live", response_model=LiveOut, responses=errors(400, 404, 409))
async def create_live(ctx: CtxDep, run: PathRun, body: LiveIn | None = None):
    """A short-lived viewer link for an active run. `control: "input"` lets the viewer drive the browser
    and holds the runtime's controller lock while the viewer is open (409 `runtime.controller_busy`
    while a CDP lease controls it); `"none"` is watch-only, enforced by the server."""
    body = body or LiveIn()
    minted = await service.mint_live(ctx, run, body.control, body.expires_in_seconds)
    return LiveOut(
        iframe_url=minted.url,
        url=minted.url,
        expires_at=service.iso_epoch(minted.expires_at),
        control=body.control,
        viewer_id=str(minted.token.viewer_id),
    )


@api.post("/runs/{run_id}/recording", response_model=RecordingOut, responses=errors(400, 404))
async def create_recording(ctx: CtxDep, run: PathRun, body: RecordingIn | None = None):
    """A short-lived replay link, during the run (what is recorded so far) or after it."""
    body = body or RecordingIn()
    minted, info = await service.mint_recording(ctx, run, body.expires_in_seconds)
    return RecordingOut(
        iframe_url=minted.url,
        url=minted.url,
        expires_at=service.iso_epoch(minted.expires_at),
        duration_seconds=round(info["durationMs"] / 1000, 3),
        viewer_id=str(minted.token.viewer_id),
        **{
            "status": info["status"],
            "duration_ms": info["durationMs"],
            "artifact_id": info["artifactId"],
            "failure": info["failure"],
        },
    )


def _viewer_out(row) -> ViewerOut:
    return ViewerOut(
        viewer_id=str(row.id),
        kind=row.kind,
        control=row.control,
        expires_at=clock.iso(row.expires_at),
        revoked_at=clock.iso(row.revoked_at) if row.revoked_at else None,
    )


@api.delete("/runs/{run_id}/viewers/{viewer_id}", response_model=ViewerOut, responses=errors(404))
async def revoke_viewer(ctx: CtxDep, run: PathRun, viewer_id: str):
    """Revoke one live or replay link before it expires: its URL stops working and open pages close
    (at once on this server, within seconds on the others). An input viewer gives control back."""
    [row] = await service.revoke_viewers(ctx, run, viewer_id)
    return _viewer_out(row)


@api.delete("/runs/{run_id}/viewers", response_model=RevokedViewers, responses=errors(404))
async def revoke_all_viewers(ctx: CtxDep, run: PathRun):
    """Revoke every live and replay link of the run."""
    return RevokedViewers(data=[_viewer_out(row) for row in await service.revoke_viewers(ctx, run)])


@api.websocket("/live/socket")
async def viewer_socket(ws: WebSocket, token: str | None = None, start: Literal["control", "watch"] | None = None):
    """The live page's socket. An input link takes control when it opens, unless `start=watch`: then
    the page watches until it sends `{"type": "takeover"}`. A refused take-over answers a `state`
    message whose `refused` says why (`code`, `message`, `holder`, `holderKind`, `holderId`, `until`)."""
    ctx = ws.app.state.ctx
    await service.open_viewer(ctx, ws, token, start)


@api.get("/replay/data", response_model=ReplayData)
async def replay_data(ctx: CtxDep, token: str | None = None):
    data = await service.replay_data(ctx, token)
    # A replay link minted for a view's page carries the run's activity only if the view shows events.
    if not await views.link_shows_events(ctx, tokens.verify(ctx.signing_key, token, "replay").viewer_id):
        data["activity"] = []
    return data


@api.get(
    "/replay/frames/{seq}",
    response_class=FileResponse,
    responses={200: {"description": "The frame, a JPEG", "content": {"image/jpeg": {"schema": openapi.BINARY}}}},
)
async def replay_frame(ctx: CtxDep, seq: int, token: str | None = None):
    found = await service.replay_frame(ctx, token, seq)
    if found is None:
        raise NotFound("No such frame", code="recording.frame_not_found")
    headers = {"Cache-Control": "private, max-age=86400"}
    if isinstance(found, bytes):  # read from the object store: any replica serves any run's frames
        return Response(found, media_type="image/jpeg", headers=headers)
    return FileResponse(found, media_type="image/jpeg", headers=headers)


@api.get("/replay/video", response_class=StreamingResponse, responses=openapi.download("The recording's video"))
async def replay_video(ctx: CtxDep, token: str | None = None, range: str | None = Header(default=None)):
    artifact = await service.replay_video(ctx, token)
    if artifact is None:
        raise NotFound("The recording's video is not ready", code="recording.not_ready")
    return await serve(
        make_store(ctx.settings),
        Download(
            key=artifact.object_key, filename=artifact.name, content_type=artifact.content_type, sha256=artifact.sha256
        ),
        range,
    )


# --- the account's branding on our pages ---------------------------------------------------------

BRANDING_META = '<meta name="bctrl-branding" content="">'


async def page_branding(ctx: AppContext, account_id: uuid.UUID) -> dict[str, Any] | None:
    """The account's resolved branding (app/accounts/branding.py: what its account answer says as
    `branding.resolved`, a logo only with an origin the page's policy can name), for its pages. None
    when the account is gone."""
    try:
        account = await accounts.get_account(ctx.db, account_id)
    except NotFound:
        return None
    return resolve(account.branding)


def img_sources(resolved: dict[str, Any] | None) -> str:
    """A page's img-src: its own images, and the origin of the account's logo, nothing broader."""
    origin = logo_origin((resolved or {}).get("logo"))
    return "'self' data: blob:" + (f" {origin}" if origin else "")


def branded_html(name: str, branding: dict[str, Any] | None) -> str:
    """The page `app/web/<name>` with the branding written into it (no branding: the page's defaults)."""
    text = (WEB / name).read_text()
    if branding is None:
        return text
    content = html.escape(orjson.dumps(branding).decode(), quote=True)
    return text.replace(BRANDING_META, f'<meta name="bctrl-branding" content="{content}">', 1)


async def _link_branding(ctx: AppContext, token: str, kind: str) -> dict[str, Any] | None:
    try:
        link = tokens.verify(ctx.signing_key, token, kind)
    except Unauthorized:  # the page itself says the link is invalid; no account to show
        return None
    return await page_branding(ctx, link.account_id)


@pages.get("/live")
async def live_page(ctx: CtxDep, token: str = Query(default="")):
    branding = await _link_branding(ctx, token, "live")
    return HTMLResponse(branded_html("live.html", branding), headers=_page_headers(branding))


@pages.get("/replay")
async def replay_page(ctx: CtxDep, token: str = Query(default="")):
    branding = await _link_branding(ctx, token, "replay")
    return HTMLResponse(branded_html("replay.html", branding), headers=_page_headers(branding))


@pages.get("/live/branding.js")
async def branding_script() -> Response:
    """The pages' branding script (public: it holds no data)."""
    return Response(
        (WEB / "branding.js").read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def _page_headers(branding: dict[str, Any] | None) -> dict[str, str]:
    # Embeddable anywhere (that is what an iframe URL is for); the token never leaves in a Referer.
    return {
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Security-Policy": f"default-src 'self'; img-src {img_sources(branding)}; media-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
        "connect-src 'self' ws: wss:",
    }


routers = (api, pages)

"""The view page (`/view?token=...`, app/web/view.html) and the data routes it calls with its token.

The page is built on the live viewer and replay pages: it asks these routes for viewer links minted
under the view (`/view/live`, `/view/replay`) and shows them in frames, with the run's events beside
them when the view includes events, its trace as a timeline under them when the view includes the trace
(`/view/trace`, drawn by app/web/view-timeline.js), and its files to download when the view may read
files (`/view/files`). Every route checks the view's token, and the origin a browser says
the request comes from, each time: a revoked or expired view stops answering at once. The page and its
state carry the branding of the view's account, resolved by app/accounts/branding.py (app/live/router.py:
`page_branding`), as the view's answer (`branding`) and `GET /v1/account` give it."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from app.core.context import AppContext, CtxDep
from app.core.errors import DomainError
from app.core.schemas import RequestModel
from app.live.router import branded_html, img_sources, page_branding
from app.runs.models import Run
from app.storage import http as content
from app.storage import make_store
from app.views import service
from app.views.models import View

WEB = Path(__file__).resolve().parents[1] / "web"

pages = APIRouter(include_in_schema=False)
routers = (pages,)

_bearer = HTTPBearer(auto_error=False)
# Sec-Fetch-Dest values of a page loaded into a frame.
FRAMED = ("iframe", "frame", "embed", "object")


class LiveLinkIn(RequestModel):
    run_id: str = Field(max_length=64)
    control: bool = False


class ReplayLinkIn(RequestModel):
    run_id: str = Field(max_length=64)


async def page_view(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    origin: Annotated[str | None, Header()] = None,
    referer: Annotated[str | None, Header()] = None,
) -> View:
    view = await service.authenticate(ctx, credentials.credentials if credentials else None)
    service.check_origin(ctx, view, origin, referer)
    return view


PageView = Annotated[View, Depends(page_view)]


async def view_run(ctx: CtxDep, view: PageView, run_id: Annotated[str, Query(alias="runId", max_length=64)]) -> Run:
    """The path object of the page's run routes: the `runId` the view may show (404 otherwise)."""
    return await service.visible_run(ctx, view, run_id)


ViewRun = Annotated[Run, Depends(view_run)]


def _headers(ctx: AppContext, view: View | None, branding: dict[str, Any] | None = None) -> dict[str, str]:
    ancestors = service.frame_ancestors(view) if view is not None else "'none'"
    headers = {
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": f"default-src 'self'; img-src {img_sources(branding)}; media-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'; "
        f"frame-src 'self'; frame-ancestors {ancestors}",
    }
    if ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return headers


def _refused(ctx: AppContext, error: DomainError) -> HTMLResponse:
    text = html.escape(error.message)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>View unavailable</title>'
        "<style>:root{color-scheme:dark;font:15px/1.5 system-ui,sans-serif}body{margin:0;height:100vh;display:flex;"
        "align-items:center;justify-content:center;background:#111;color:#ddd}main{max-width:420px;padding:24px;"
        "text-align:center}h1{font-size:18px}</style></head>"
        f'<body><main><h1 id="refused" data-code="{html.escape(error.code)}">View unavailable</h1>'
        f"<p>{text}</p></main></body></html>"
    )
    return HTMLResponse(body, status_code=error.status, headers=_headers(ctx, None))


@pages.get("/view")
async def view_page(
    ctx: CtxDep,
    token: Annotated[str, Query(max_length=200)] = "",
    referer: Annotated[str | None, Header()] = None,
    sec_fetch_dest: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """The view's page: 401 (an error page) for a forged, expired or revoked token; when a browser says
    it loads the page into a frame from an origin the presentation does not allow, 403. (Opened as a
    page, from a link anywhere, it is not refused; framing is also bounded by frame-ancestors.)"""
    try:
        view = await service.authenticate(ctx, token)
        if sec_fetch_dest in FRAMED:
            service.check_origin(ctx, view, None, referer)
    except DomainError as refused:
        return _refused(ctx, refused)
    branding = await page_branding(ctx, view.account_id)
    return HTMLResponse(branded_html("view.html", branding), headers=_headers(ctx, view, branding))


@pages.get("/view/state")
async def view_state(ctx: CtxDep, view: PageView) -> dict[str, Any]:
    """What the page shows now: its grants, each browser in scope with the run to show, and the branding
    of the view's account as it is now (a changed logo origin is allowed from the next page load)."""
    return {**await service.page_state(ctx, view), "branding": await page_branding(ctx, view.account_id)}


@pages.post("/view/live")
async def view_live(ctx: CtxDep, view: PageView, body: LiveLinkIn) -> dict[str, Any]:
    """A live viewer link for a run of the view; `control` takes the browser under the controller lock
    (403 unless the view allows control, 409 while a CDP lease or an agent holds it)."""
    run = await service.visible_run(ctx, view, body.run_id)
    return await service.live_link(ctx, view, run, body.control)


@pages.post("/view/replay")
async def view_replay(ctx: CtxDep, view: PageView, body: ReplayLinkIn) -> dict[str, Any]:
    """A replay link for a run of the view (403 unless the view includes recordings)."""
    run = await service.visible_run(ctx, view, body.run_id)
    return await service.replay_link(ctx, view, run)


@pages.get("/view/events")
async def view_events(ctx: CtxDep, view: PageView, run: ViewRun) -> dict[str, Any]:
    """The run's activity for the events panel (403 unless the view includes events)."""
    return await service.events(ctx, view, run)


@pages.get("/view/trace")
async def view_trace(ctx: CtxDep, view: PageView, run: ViewRun) -> dict[str, Any]:
    """The run's spans for the timeline (403 unless the view includes the trace)."""
    return await service.trace(ctx, view, run)


@pages.get("/view/files")
async def view_files(ctx: CtxDep, view: PageView, run: ViewRun) -> dict[str, Any]:
    """The run's files, newest first (403 unless the view may read files)."""
    return await service.files(ctx, view, run)


@pages.get("/view/files/{file_id}")
async def view_file_content(
    ctx: CtxDep,
    view: PageView,
    file_id: Annotated[str, PathParam(max_length=64)],
    run: ViewRun,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """One of the run's files, as an attachment (a single `Range` gets 206); 403 unless the view may
    read files, 404 for a file that is not the run's."""
    download = await service.file_download(ctx, view, run, file_id)
    return await content.serve(make_store(ctx.settings), download, range_, if_range)


@pages.get("/view/timeline.js")
async def view_timeline_script() -> Response:
    """The page's timeline script (public: it holds no data)."""
    return Response(
        (WEB / "view-timeline.js").read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )

"""Pages of a running browser: list, open, get, activate, navigate, close, PDF and screenshot
(`/v1/browsers/{browserId}/pages`). Each holds the browser for its duration (409
`browser.control_held` while a CDP client, a person or a task holds it; 409 `browser.not_running`
when it is not running) and answers the run event it recorded as `eventId`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.browsing import pages as service
from app.core.paging import PageParams, encode_cursor, page_params
from app.core.schemas import errors
from app.current.page_schemas import (
    BrowserPageDeletedOut,
    BrowserPageOut,
    BrowserPagesListOut,
    PageDeleteResultOut,
    PageNavigateIn,
    PageOpenIn,
    PagePdfIn,
    PagePdfOut,
    PagePdfResultOut,
    PageResultOut,
    PageScreenshotIn,
    PageScreenshotOut,
    PageScreenshotResultOut,
    PagesResultOut,
)
from app.current.paths import PathBrowser

router = APIRouter(prefix="/v1/browsers/{browser_id}/pages", tags=["pages"])
routers: tuple[APIRouter, ...] = (router,)

Page = Annotated[PageParams, Depends(page_params)]
PageId = Annotated[str, Path(min_length=1, max_length=64, description="The page's id (its CDP target id)")]
# Every operation may find the browser held (409) or the browser unable to do it (502).
HELD = (404, 409, 502)


def _page(run_id, state: service.PageState) -> BrowserPageOut:
    return BrowserPageOut(id=state.id, run_id=str(run_id), url=state.url, title=state.title, active=state.active)


def _result(result: service.PageResult) -> PageResultOut:
    return PageResultOut(
        status="succeeded" if result.settled else "unknown",
        event_id=result.event_id,
        data=_page(result.run_id, result.page) if result.page is not None else None,
    )


def _after(page: PageParams) -> tuple[str, str] | None:
    """A cursor is `runId:pageId` (it belongs to the run that produced it); anything else is invalid."""
    if page.after is None:
        return None
    run_id, _, page_id = str(page.after).partition(":")
    return run_id, page_id


@router.get("", response_model=PagesResultOut, responses=errors(400, *HELD))
async def list_pages(runtime: PathBrowser, ctx: CtxDep, p: PrincipalDep, page: Page) -> PagesResultOut:
    """The open pages of the current run, ordered by page id."""
    listing = await service.list_pages(ctx, runtime, str(p.key_id), page.limit, _after(page))
    cursor = encode_cursor(f"{listing.run_id}:{listing.next_after}") if listing.next_after else None
    return PagesResultOut(
        event_id=listing.event_id,
        data=BrowserPagesListOut(
            data=[_page(listing.run_id, state) for state in listing.pages],
            has_more=cursor is not None,
            next_cursor=cursor,
        ),
    )


@router.post("", response_model=PageResultOut, responses=errors(400, *HELD))
async def open_page(
    runtime: PathBrowser, ctx: CtxDep, p: PrincipalDep, idem: IdempotencyDep, body: PageOpenIn | None = None
) -> PageResultOut:
    """Open a page at an http(s) URL (loaded up to 30 s) or about:blank, in front unless `activate` is false."""
    body = body or PageOpenIn()

    async def make() -> PageResultOut:
        activate = True if body.activate is None else body.activate
        return _result(await service.open_page(ctx, runtime, str(p.key_id), body.url, activate))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{page_id}", response_model=PageResultOut, responses=errors(*HELD))
async def get_page(runtime: PathBrowser, page_id: PageId, ctx: CtxDep, p: PrincipalDep) -> PageResultOut:
    """One open page: its URL, title and whether it is the active one."""
    return _result(await service.get(ctx, runtime, str(p.key_id), page_id))


@router.delete("/{page_id}", response_model=PageDeleteResultOut, responses=errors(*HELD))
async def close_page(
    runtime: PathBrowser, page_id: PageId, ctx: CtxDep, p: PrincipalDep, idem: IdempotencyDep
) -> PageDeleteResultOut:
    """Close the page (without a beforeunload prompt)."""

    async def make() -> PageDeleteResultOut:
        result = await service.close(ctx, runtime, str(p.key_id), page_id)
        return PageDeleteResultOut(
            event_id=result.event_id, data=BrowserPageDeletedOut(id=page_id, run_id=str(result.run_id))
        )

    return await idem.once(make, {"pageId": page_id})


@router.post("/{page_id}/activate", response_model=PageResultOut, responses=errors(*HELD))
async def activate_page(
    runtime: PathBrowser, page_id: PageId, ctx: CtxDep, p: PrincipalDep, idem: IdempotencyDep
) -> PageResultOut:
    """Bring the page to the front, once the browser reports it there; computer use then acts on it."""

    async def make() -> PageResultOut:
        return _result(await service.activate(ctx, runtime, str(p.key_id), page_id))

    return await idem.once(make, {"pageId": page_id})


@router.post("/{page_id}/navigate", response_model=PageResultOut, responses=errors(400, *HELD))
async def navigate_page(
    runtime: PathBrowser, page_id: PageId, ctx: CtxDep, p: PrincipalDep, idem: IdempotencyDep, body: PageNavigateIn
) -> PageResultOut:
    """Load an http(s) URL and wait up to `timeoutMs` (default 30000) for the document (`waitUntil`,
    default load); when the time runs out first, `status` is `unknown` and `data` the page as it is."""

    async def make() -> PageResultOut:
        timeout = (body.timeout_ms or service.DEFAULT_TIMEOUT * 1000) / 1000
        return _result(
            await service.navigate(ctx, runtime, str(p.key_id), page_id, body.url, timeout, body.wait_until or "load")
        )

    return await idem.once(make, {"pageId": page_id, **body.model_dump(mode="json")})


@router.post("/{page_id}/pdf", response_model=PagePdfResultOut, responses=errors(400, *HELD))
async def page_pdf(
    runtime: PathBrowser,
    page_id: PageId,
    ctx: CtxDep,
    p: PrincipalDep,
    idem: IdempotencyDep,
    body: PagePdfIn | None = None,
) -> PagePdfResultOut:
    """Print the page to PDF, returned base64."""
    body = body or PagePdfIn()
    options = service.PdfOptions(
        landscape=bool(body.landscape),
        print_background=bool(body.print_background),
        scale=1.0 if body.scale is None else body.scale,
    )

    async def make() -> PagePdfResultOut:
        made = await service.pdf(ctx, runtime, str(p.key_id), page_id, options)
        return PagePdfResultOut(
            event_id=made.event_id, data=PagePdfOut(page_id=made.page_id, run_id=str(made.run_id), data=made.data)
        )

    return await idem.once(make, {"pageId": page_id, **body.model_dump(mode="json")})


@router.post("/{page_id}/screenshot", response_model=PageScreenshotResultOut, responses=errors(400, *HELD))
async def page_screenshot(
    runtime: PathBrowser,
    page_id: PageId,
    ctx: CtxDep,
    p: PrincipalDep,
    idem: IdempotencyDep,
    body: PageScreenshotIn | None = None,
) -> PageScreenshotResultOut:
    """Capture the viewport (or the full page, or a `clip` rectangle) as png, jpeg or webp, base64."""
    body = body or PageScreenshotIn()
    clip = body.clip
    options = service.ScreenshotOptions(
        format=body.format or "png",
        quality=body.quality,
        full_page=bool(body.full_page),
        clip=(clip.x, clip.y, clip.width, clip.height) if clip is not None else None,
    )

    async def make() -> PageScreenshotResultOut:
        shot = await service.screenshot(ctx, runtime, str(p.key_id), page_id, options)
        return PageScreenshotResultOut(
            event_id=shot.event_id,
            data=PageScreenshotOut(
                page_id=shot.page_id, run_id=str(shot.run_id), mime_type=shot.mime_type, data=shot.data
            ),
        )

    return await idem.once(make, {"pageId": page_id, **body.model_dump(mode="json")})

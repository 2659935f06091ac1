"""Pages of a running browser for API callers: list, read, open, activate, navigate, close, print to PDF
and capture a screenshot.

A page's id is its CDP target id: what the run observer records as `pageId` (app/cdp/observer.py), so
stable for the run. Every operation holds the browser through `access.hold` (the controller as holder
`api`, refused while a CDP client, a person or a task holds it) and is one run event of category
`pages` whose id the caller gets back. The page opened or activated last is the link's `active_page`:
where computer-use actions go.

A navigation waits for its document (`load` by default, or `domcontentloaded`, `networkidle`,
`commit`) up to a timeout; one that runs out is not an error but an outcome the caller cannot know
(`settled=False`): the page may still arrive. The browser is given back either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from app.browsing import access
from app.browsing.access import BrowserCallFailed, Held
from app.core.context import AppContext
from app.core.errors import DomainError, InvalidRequest, NotFound
from app.runtimes.models import Runtime

log = structlog.get_logger(__name__)

WaitUntil = Literal["load", "domcontentloaded", "networkidle", "commit"]
ImageFormat = Literal["png", "jpeg", "webp"]

# The lifecycle event of the main frame each wait condition waits for (commit: none, Page.navigate
# answers once the new document is committed).
_LIFECYCLE = {"load": "load", "domcontentloaded": "DOMContentLoaded", "networkidle": "networkIdle"}
DEFAULT_TIMEOUT = 30.0
# How long activation waits for the browser to report the page in front.
ACTIVATE_CONFIRM_SECONDS = 3.0
# How long a close waits for the browser to report the page gone.
CLOSE_CONFIRM_SECONDS = 5.0
# Renewing the hold while a long operation runs (the hold's TTL is access.HOLD_TTL_MS).
RENEW_EVERY = 10.0
# Chromium's own limit for one captured image side, in CSS pixels at scale 1.
MAX_CAPTURE_SIDE = 16_384
# A read of one page's visibility must not hang the operation on a page that is busy.
PROBE_TIMEOUT = 2.0


@dataclass
class PageState:
    id: str
    url: str
    title: str
    active: bool


@dataclass
class PageResult:
    run_id: uuid.UUID
    event_id: str
    page: PageState | None
    # False: the operation was started but its outcome is unknown (a navigation that ran out of time).
    settled: bool = True


@dataclass
class PageListing:
    run_id: uuid.UUID
    event_id: str
    pages: list[PageState]
    # The id of the last page returned when another page follows it, else None.
    next_after: str | None


@dataclass
class Capture:
    run_id: uuid.UUID
    event_id: str
    page_id: str
    data: str  # base64, as the browser gives it
    mime_type: str
    size: int = 0


@dataclass
class ScreenshotOptions:
    format: ImageFormat = "png"
    quality: int | None = None
    full_page: bool = False
    # x, y, width, height in CSS pixels: relative to the viewport, or to the page with full_page.
    clip: tuple[float, float, float, float] | None = None


@dataclass
class PdfOptions:
    landscape: bool = False
    print_background: bool = False
    scale: float = 1.0


def page_not_found(page_id: str) -> NotFound:
    return NotFound(
        f"No page {page_id} is open in this browser's current run",
        code="resource.not_found",
        details={"pageId": page_id, "resource": "page"},
    )


def _cursor_invalid() -> InvalidRequest:
    return InvalidRequest(
        "cursor belongs to another run of this browser, or was not returned as nextCursor",
        code="pagination.cursor_invalid",
        details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
    )


# --- helpers ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _held(ctx: AppContext, runtime: Runtime, actor: str | None):
    """The hold, renewed in the background while the operation runs (navigations may take a while)."""
    async with access.hold(ctx, runtime, actor=actor) as held:

        async def renew() -> None:
            while True:
                await asyncio.sleep(RENEW_EVERY)
                try:
                    await held.renew()
                except Exception:
                    log.warning("pages_hold_renew_failed", runtime_id=str(runtime.id), exc_info=True)
                    return

        task = asyncio.create_task(renew(), name="pages-hold-renew")
        try:
            yield held
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _find(held: Held, page_id: str) -> dict[str, Any]:
    for info in await held.pages():
        if info["targetId"] == page_id:
            return info
    raise page_not_found(page_id)


async def _evaluate(held: Held, page_id: str, expression: str, timeout: float = PROBE_TIMEOUT) -> Any:
    session = await held.session(page_id)
    answer = await held.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session, timeout=timeout
    )
    return answer.get("result", {}).get("value")


async def _visible(held: Held, page_id: str) -> bool:
    try:
        return await _evaluate(held, page_id, "document.visibilityState") == "visible"
    except DomainError:
        return False


async def _active_id(held: Held, infos: list[dict[str, Any]]) -> str | None:
    """The page API actions go to: the link's active page while it is open, else the page the browser
    shows in front (remembered as the link's active page from then on)."""
    ids = [info["targetId"] for info in infos]
    if held.link.active_page in ids:
        return held.link.active_page
    for page_id in ids:
        if await _visible(held, page_id):
            held.link.active_page = page_id
            return page_id
    return None


def _state(info: dict[str, Any], active: str | None) -> PageState:
    return PageState(
        id=info["targetId"],
        url=str(info.get("url", "")),
        title=str(info.get("title", "")),
        active=info["targetId"] == active,
    )


async def _page_state(held: Held, page_id: str) -> PageState:
    infos = await held.pages()
    for info in infos:
        if info["targetId"] == page_id:
            return _state(info, await _active_id(held, infos))
    raise page_not_found(page_id)


async def _bring_to_front(held: Held, page_id: str) -> None:
    """Activate the page and wait until the browser reports it visible; refuse if it never does."""
    session = await held.session(page_id)
    await held.send("Target.activateTarget", {"targetId": page_id})
    await held.send("Page.bringToFront", None, session)
    deadline = asyncio.get_running_loop().time() + ACTIVATE_CONFIRM_SECONDS
    while not await _visible(held, page_id):
        if asyncio.get_running_loop().time() >= deadline:
            raise BrowserCallFailed("Page.bringToFront", "the browser did not bring the page to the front")
        await asyncio.sleep(0.05)
    held.link.active_page = page_id


@dataclass
class _Lifecycle:
    """Lifecycle events of one page session, kept from before the navigation starts."""

    session: str
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (frameId, loaderId, name)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if session == self.session and method == "Page.lifecycleEvent":
            self.seen.append((params.get("frameId", ""), params.get("loaderId", ""), params.get("name", "")))
            self.changed.set()

    async def reached(self, frame_id: str, loader_id: str, name: str) -> None:
        while (frame_id, loader_id, name) not in self.seen:
            self.changed.clear()
            await self.changed.wait()


class NavigationFailed(DomainError):
    """The browser could not load the URL (refused, unresolvable, blocked): its own reason."""

    status = 502
    code = "browser.command_failed"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"The browser could not load {url}: {reason}", details={"method": "Page.navigate", "reason": reason}
        )


# What the browser refuses about the URL itself (the caller's input, 400), not about loading it (502).
REFUSED_URLS = ("net::ERR_UNSAFE_PORT", "net::ERR_INVALID_URL", "net::ERR_DISALLOWED_URL_SCHEME")


def url_refused(url: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid request: url: {why}",
        details={"fields": [{"field": "url", "in": "body", "message": why, "type": "value_error"}], "url": url[:200]},
    )


async def _navigate(held: Held, page_id: str, url: str, wait_until: WaitUntil, timeout: float) -> bool:
    """Navigate and wait; True once the condition is met, False when the time ran out first."""
    session = await held.session(page_id)
    await held.send("Page.enable", None, session)
    await held.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
    events = _Lifecycle(session)
    with held.link.listening(events):
        try:
            async with asyncio.timeout(timeout):
                try:
                    answer = await held.send("Page.navigate", {"url": url}, session, timeout=timeout + 5)
                except BrowserCallFailed as failed:
                    if "invalid URL" in failed.message:
                        raise url_refused(url, "the browser cannot navigate to it (not a valid URL)") from None
                    raise
                if answer.get("errorText") in REFUSED_URLS:
                    raise url_refused(url, f"the browser refuses it ({answer['errorText']})")
                if answer.get("errorText") and not answer.get("isDownload"):
                    raise NavigationFailed(url, answer["errorText"])
                loader = answer.get("loaderId")
                if loader and wait_until != "commit" and not answer.get("isDownload"):
                    await events.reached(answer["frameId"], loader, _LIFECYCLE[wait_until])
        except TimeoutError:
            return False
    return True


async def _event(held: Held, type: str, data: dict[str, Any], page_id: str | None = None) -> str:
    return await held.event(type, "pages", data, page_id=page_id)


# --- operations ------------------------------------------------------------------------------------


async def list_pages(
    ctx: AppContext, runtime: Runtime, actor: str | None, limit: int, after: tuple[str, str] | None = None
) -> PageListing:
    """The run's open pages ordered by id; `after` is (run id, page id) of a previous page's last item."""
    async with _held(ctx, runtime, actor) as held:
        if after is not None and after[0] != str(held.run_id):
            raise _cursor_invalid()
        infos = sorted(await held.pages(), key=lambda info: info["targetId"])
        active = await _active_id(held, infos)
        if after is not None:
            infos = [info for info in infos if info["targetId"] > after[1]]
        chosen = infos[:limit]
        next_after = chosen[-1]["targetId"] if len(infos) > limit else None
        event_id = await _event(held, "pages.listed", {"count": len(chosen)})
        return PageListing(held.run_id, event_id, [_state(info, active) for info in chosen], next_after)


async def get(ctx: AppContext, runtime: Runtime, actor: str | None, page_id: str) -> PageResult:
    async with _held(ctx, runtime, actor) as held:
        state = await _page_state(held, page_id)
        event_id = await _event(held, "pages.read", {"url": state.url}, page_id)
        return PageResult(held.run_id, event_id, state)


async def open_page(
    ctx: AppContext, runtime: Runtime, actor: str | None, url: str | None, activate: bool = True
) -> PageResult:
    """A new page (about:blank, or `url` loaded up to DEFAULT_TIMEOUT), in front unless `activate` is
    false. A URL the browser cannot load closes the page again before the error is answered."""
    async with _held(ctx, runtime, actor) as held:
        created = await held.send("Target.createTarget", {"url": "about:blank", "background": not activate})
        page_id = created["targetId"]
        settled = True
        try:
            if activate:
                await _bring_to_front(held, page_id)
            if url and url != "about:blank":
                settled = await _navigate(held, page_id, url, "load", DEFAULT_TIMEOUT)
        except BaseException:
            with contextlib.suppress(Exception):
                await held.send("Target.closeTarget", {"targetId": page_id})
            raise
        state = await _page_state(held, page_id)
        event_id = await _event(
            held, "pages.opened", {"url": url or "about:blank", "activate": activate, "settled": settled}, page_id
        )
        return PageResult(held.run_id, event_id, state, settled)


async def activate(ctx: AppContext, runtime: Runtime, actor: str | None, page_id: str) -> PageResult:
    async with _held(ctx, runtime, actor) as held:
        await _find(held, page_id)
        await _bring_to_front(held, page_id)
        state = await _page_state(held, page_id)
        event_id = await _event(held, "pages.activated", {"url": state.url}, page_id)
        return PageResult(held.run_id, event_id, state)


async def navigate(
    ctx: AppContext,
    runtime: Runtime,
    actor: str | None,
    page_id: str,
    url: str,
    timeout: float = DEFAULT_TIMEOUT,
    wait_until: WaitUntil = "load",
) -> PageResult:
    async with _held(ctx, runtime, actor) as held:
        await _find(held, page_id)
        try:
            settled = await _navigate(held, page_id, url, wait_until, timeout)
        except NavigationFailed as failed:
            await _event(held, "pages.navigated", {"url": url, "error": failed.details.get("reason")}, page_id)
            raise
        state = await _page_state(held, page_id)
        event_id = await _event(
            held, "pages.navigated", {"url": url, "waitUntil": wait_until, "settled": settled}, page_id
        )
        return PageResult(held.run_id, event_id, state, settled)


async def close(ctx: AppContext, runtime: Runtime, actor: str | None, page_id: str) -> PageResult:
    """Close the page (no beforeunload prompt) and wait until the browser reports it gone."""
    async with _held(ctx, runtime, actor) as held:
        info = await _find(held, page_id)
        await held.send("Target.closeTarget", {"targetId": page_id})
        deadline = asyncio.get_running_loop().time() + CLOSE_CONFIRM_SECONDS
        while any(p["targetId"] == page_id for p in await held.pages()):
            if asyncio.get_running_loop().time() >= deadline:
                raise BrowserCallFailed("Target.closeTarget", "the page is still open")
            await asyncio.sleep(0.05)
        if held.link.active_page == page_id:
            held.link.active_page = None
        held.link.sessions.pop(page_id, None)
        event_id = await _event(held, "pages.closed", {"url": str(info.get("url", ""))}, page_id)
        return PageResult(held.run_id, event_id, None)


async def pdf(ctx: AppContext, runtime: Runtime, actor: str | None, page_id: str, options: PdfOptions) -> Capture:
    async with _held(ctx, runtime, actor) as held:
        await _find(held, page_id)
        session = await held.session(page_id)
        printed = await held.send(
            "Page.printToPDF",
            {"landscape": options.landscape, "printBackground": options.print_background, "scale": options.scale},
            session,
            timeout=60.0,
        )
        data = printed["data"]
        size = len(data) * 3 // 4
        event_id = await _event(held, "pages.pdf", {"bytes": size, "landscape": options.landscape}, page_id)
        return Capture(held.run_id, event_id, page_id, data, "application/pdf", size)


async def screenshot(
    ctx: AppContext, runtime: Runtime, actor: str | None, page_id: str, options: ScreenshotOptions
) -> Capture:
    async with _held(ctx, runtime, actor) as held:
        await _find(held, page_id)
        session = await held.session(page_id)
        params: dict[str, Any] = {"format": options.format}
        if options.quality is not None and options.format != "png":
            params["quality"] = options.quality
        if options.full_page or options.clip is not None:
            metrics = await held.send("Page.getLayoutMetrics", None, session)
            content = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
            view = metrics.get("cssVisualViewport") or metrics.get("visualViewport") or {}
            if options.clip is not None:
                x, y, width, height = options.clip
                if not options.full_page:
                    x, y = x + float(view.get("pageX", 0)), y + float(view.get("pageY", 0))
            else:
                x, y = 0.0, 0.0
                width = float(content.get("width", 0)) or float(view.get("clientWidth", 1))
                height = float(content.get("height", 0)) or float(view.get("clientHeight", 1))
                # Beyond what Chromium can capture in one image, the page is cut at that size.
                width, height = min(width, MAX_CAPTURE_SIDE), min(height, MAX_CAPTURE_SIDE)
            params["clip"] = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
            params["captureBeyondViewport"] = options.full_page
        shot = await held.send("Page.captureScreenshot", params, session, timeout=60.0)
        data = shot["data"]
        size = len(data) * 3 // 4
        event_id = await _event(
            held,
            "pages.screenshot",
            {"format": options.format, "fullPage": options.full_page, "clip": options.clip is not None, "bytes": size},
            page_id,
        )
        return Capture(held.run_id, event_id, page_id, data, f"image/{options.format}", size)

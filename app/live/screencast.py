"""The picture of a run's browser: one CDP connection per run and server process that follows the
run's current page and relays its screencast to every subscriber (live viewers, the recorder).

The current page is the newest open page; when it closes, the newest remaining one. Chromium's
`Target.getTargets` does not list pages in the order they were opened (five tabs opened one after the
other came back as 4, 1, 2, 3, 0), so a screencast that starts with several pages open orders them by
the run's `page.created` events (`pages_opened`); a page without one (opened since they were read)
counts as the newest. Frames are
acknowledged as they arrive, so the browser sends the next one only when this server took the last
(it paces itself); each subscriber keeps only the newest frame it has not sent yet, so a slow
viewer skips frames instead of falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.cdp.client import CdpClient, CdpError

log = structlog.get_logger(__name__)

# Bounded picture size: enough to read a page, small enough for ten viewers on loopback.
MAX_WIDTH, MAX_HEIGHT, JPEG_QUALITY = 1280, 1280, 70
# How long a picture's start waits for the run's page order before it goes without.
PAGE_ORDER_TIMEOUT = 3.0


@dataclass(frozen=True)
class Frame:
    data: str  # base64 JPEG, as the browser sent it
    width: float  # the page's viewport in CSS pixels (what input coordinates scale to)
    height: float
    timestamp: float  # when the browser captured it, epoch seconds
    received: float = field(default_factory=time.time)


class Subscriber:
    """Gets frames and state messages through callbacks that must not block. `max_fps` says how many
    frames a second it can use at most (None: as many as the browser paints)."""

    def __init__(
        self,
        on_frame: Callable[[Frame], None],
        on_state: Callable[[dict[str, Any]], None],
        max_fps: float | None = None,
    ) -> None:
        self.on_frame = on_frame
        self.on_state = on_state
        self.max_fps = max_fps


class Screencast:
    def __init__(self, run_id: uuid.UUID, ws_url: str, opened: list[str] | None = None) -> None:
        self.run_id = run_id
        self.ws_url = ws_url
        self.opened = opened or []  # page ids in the order the run opened them, for `start`
        self.subscribers: set[Subscriber] = set()
        self.client: CdpClient | None = None
        self.pages: dict[str, dict[str, Any]] = {}  # targetId -> targetInfo, oldest first
        self.target: str | None = None
        self.session: str | None = None
        self.last_frame: Frame | None = None
        self.state: dict[str, Any] = {"type": "state", "state": "connecting"}
        self._switching = asyncio.Lock()
        self._last_ack = 0.0
        self._tasks: set[asyncio.Task] = set()
        self._refreshing = False

    # --- lifecycle ---

    async def start(self) -> None:
        self.client = await CdpClient.open(self.ws_url, self._on_event)
        self._spawn(self._watch_closed())
        await self.client.send("Target.setDiscoverTargets", {"discover": True})
        for info in (await self.client.send("Target.getTargets"))["targetInfos"]:
            if _is_page(info):
                self.pages[info["targetId"]] = info
        # Discovery announced the pages already there in no useful order either: all of them are put in
        # the order the run opened them. A page the run's events do not know yet (opened since they were
        # read, or its event not written yet) counts as newer than every known one.
        rank = {page_id: n for n, page_id in enumerate(self.opened)}
        known = len(rank)
        self.pages = {p: self.pages[p] for p in sorted(self.pages, key=lambda p: rank.get(p, known))}
        await self._follow_newest()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            await self.client.close()

    async def _watch_closed(self) -> None:
        await self.client.closed.wait()
        self._set_state("ended", message="The run has ended: its browser is no longer running")

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- subscribers ---

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        subscriber.on_state(self.state)
        if self.last_frame is not None and self.target is not None:
            subscriber.on_frame(self.last_frame)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def _broadcast_state(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.on_state(self.state)

    def _set_state(self, state: str, **extra: Any) -> None:
        page = self.pages.get(self.target or "", {})
        self.state = {
            "type": "state",
            "state": state,
            "url": page.get("url"),
            "title": page.get("title"),
            "pages": len(self.pages),
            # The browser's tabs, oldest first; `id` is the page's id in the pages API (its target id).
            "tabs": [
                {"id": tid, "url": info.get("url"), "title": info.get("title"), "current": tid == self.target}
                for tid, info in self.pages.items()
            ],
            **extra,
        }
        self._broadcast_state()

    # --- following the current page ---

    async def _follow_newest(self) -> None:
        async with self._switching:
            newest = next(reversed(self.pages), None)
            if newest == self.target and self.session is not None:
                return
            await self._detach()
            self.target = newest
            if newest is None:
                self.last_frame = None
                self._set_state("no_page")
                return
            try:
                attached = await self.client.send("Target.attachToTarget", {"targetId": newest, "flatten": True})
                self.session = attached["sessionId"]
                await self.client.send(
                    "Page.startScreencast",
                    {
                        "format": "jpeg",
                        "quality": JPEG_QUALITY,
                        "maxWidth": MAX_WIDTH,
                        "maxHeight": MAX_HEIGHT,
                        "everyNthFrame": 1,
                    },
                    session_id=self.session,
                )
            except (CdpError, TimeoutError, KeyError):
                # The page closed while we attached: its targetDestroyed event picks the next one.
                self.session = None
                return
            self._set_state("live")

    async def _detach(self) -> None:
        if self.session is not None and self.client is not None:
            self.client.send_nowait("Target.detachFromTarget", {"sessionId": self.session})
        self.session = None

    async def _refresh_tabs(self) -> None:
        """Read the tabs' titles again shortly after a tab changed: the browser does not always say when
        the title of a page it is not attached to is set (the live page lists every tab)."""
        if self._refreshing or self.client is None:
            return
        self._refreshing = True
        try:
            for delay in (0.3, 1.0):
                await asyncio.sleep(delay)
                infos = (await self.client.send("Target.getTargets", timeout=5))["targetInfos"]
                changed = False
                for info in infos:
                    old = self.pages.get(info.get("targetId"))
                    if (
                        old is not None
                        and _is_page(info)
                        and (old.get("url"), old.get("title"))
                        != (
                            info.get("url"),
                            info.get("title"),
                        )
                    ):
                        self.pages[info["targetId"]] = info
                        changed = True
                if changed:
                    self._set_state(self.state["state"])
        except (CdpError, TimeoutError, KeyError):
            pass
        finally:
            self._refreshing = False

    def _on_event(self, method: str, params: dict[str, Any], session_id: str | None) -> None:
        if method == "Page.screencastFrame":
            if session_id is not None:
                self._ack(session_id, params["sessionId"])
            if session_id == self.session and session_id is not None:
                self._frame(params)
        elif method == "Target.targetCreated" and _is_page(params["targetInfo"]):
            self.pages[params["targetInfo"]["targetId"]] = params["targetInfo"]
            self._spawn(self._follow_newest())
            self._spawn(self._refresh_tabs())
        elif method == "Target.targetDestroyed" and params["targetId"] in self.pages:
            del self.pages[params["targetId"]]
            if params["targetId"] == self.target:
                self.session = None
                self._spawn(self._follow_newest())
            else:
                self._set_state(self.state["state"])
        elif method == "Target.targetInfoChanged" and params["targetInfo"]["targetId"] in self.pages:
            info = params["targetInfo"]
            old = self.pages[info["targetId"]]
            self.pages[info["targetId"]] = info
            if (old.get("url"), old.get("title")) != (info.get("url"), info.get("title")):
                self._set_state(self.state["state"])
                self._spawn(self._refresh_tabs())
        elif method == "Target.detachedFromTarget" and params.get("sessionId") == self.session:
            self.session = None

    def _ack(self, session_id: str, frame_number: int) -> None:
        """Acknowledge a frame, which lets the browser paint the next one: at once while someone watches
        live, or paced to what the subscribers can use (a recorder keeping 5 a second does not make the
        browser encode 60)."""
        caps = [s.max_fps for s in self.subscribers]
        delay = 0.0
        if caps and None not in caps:
            delay = max(0.0, 1.0 / max(caps) - (time.monotonic() - self._last_ack))

        def ack() -> None:
            self._last_ack = time.monotonic()
            if self.client is not None:
                self.client.send_nowait("Page.screencastFrameAck", {"sessionId": frame_number}, session_id)

        if delay:
            asyncio.get_running_loop().call_later(delay, ack)
        else:
            ack()

    def _frame(self, params: dict[str, Any]) -> None:
        meta = params.get("metadata", {})
        frame = Frame(
            data=params["data"],
            width=float(meta.get("deviceWidth") or 0),
            height=float(meta.get("deviceHeight") or 0),
            timestamp=float(meta.get("timestamp") or time.time()),
        )
        self.last_frame = frame
        for subscriber in list(self.subscribers):
            try:
                subscriber.on_frame(frame)
            except Exception:
                log.warning("screencast_subscriber_failed", run_id=str(self.run_id), exc_info=True)

    # --- input ---

    async def send_input(self, method: str, params: dict[str, Any]) -> None:
        if self.session is None or self.client is None:
            return
        with contextlib.suppress(CdpError, TimeoutError):
            await self.client.send(method, params, session_id=self.session, timeout=5)


def _is_page(info: dict[str, Any]) -> bool:
    return info.get("type") == "page" and not str(info.get("url", "")).startswith("devtools://")


PagesOpened = Callable[[uuid.UUID], Awaitable[list[str]]]


class ScreencastHub:
    """The screencasts of this process, one per run, shared by its subscribers and closed with the last.
    `pages_opened(run_id)`: the run's page ids in the order they were opened (none given: no order)."""

    def __init__(self, pages_opened: PagesOpened | None = None) -> None:
        self._pages_opened = pages_opened
        self._casts: dict[uuid.UUID, Screencast] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def subscribe(self, run_id: uuid.UUID, ws_url: str, subscriber: Subscriber) -> Screencast:
        lock = self._locks.setdefault(run_id, asyncio.Lock())
        async with lock:
            cast = self._casts.get(run_id)
            if cast is None or cast.state["state"] == "ended":
                cast = Screencast(run_id, ws_url, await self._opened(run_id))
                try:
                    await cast.start()
                except BaseException:
                    await cast.close()
                    raise
                self._casts[run_id] = cast
            cast.subscribe(subscriber)
            return cast

    async def _opened(self, run_id: uuid.UUID) -> list[str]:
        if self._pages_opened is None:
            return []
        try:
            # Bounded: this runs under the run's lock, which every viewer of the run waits for.
            return await asyncio.wait_for(self._pages_opened(run_id), PAGE_ORDER_TIMEOUT)
        except Exception:  # the database unreachable: the picture still starts, maybe on an older page
            log.warning("screencast_page_order_unknown", run_id=str(run_id), exc_info=True)
            return []

    async def unsubscribe(self, cast: Screencast, subscriber: Subscriber) -> None:
        lock = self._locks.setdefault(cast.run_id, asyncio.Lock())
        async with lock:
            cast.unsubscribe(subscriber)
            if not cast.subscribers:
                if self._casts.get(cast.run_id) is cast:
                    del self._casts[cast.run_id]
                    self._locks.pop(cast.run_id, None)
                await cast.close()

    async def close(self) -> None:
        for cast in list(self._casts.values()):
            await cast.close()
        self._casts.clear()

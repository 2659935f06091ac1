"""The page's viewport is what the user asked for: `window.innerWidth/innerHeight`, not the window.

Chromium's `--window-size` sizes the whole window, toolbar included, and how much the window's chrome
takes differs between headless and headful and between versions (new headless draws a toolbar of its
own). So a driver starts the browser with the viewport plus the chrome it expects (`window_size`), then
`fit` looks at the first page once its DevTools endpoint answers: when the page's size is not the
viewport, it resizes that window by the difference (Browser.setWindowBounds) and tells the driver the
chrome it measured, which the next launch of the same binary and mode starts with. New tabs share the
window, and new windows open at `--window-size`, so they get the viewport as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect

log = structlog.get_logger(__name__)

DEFAULT_VIEWPORT = (1280, 720)
# What new headless's window chrome takes on Chromium 156 (its toolbar), before anything is measured.
GUESSED_CHROME = (0, 87)


class Chrome:
    """Window chrome measured per (binary or image, headless): (extra width, extra height)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, bool], tuple[int, int]] = {}

    def window_size(self, key: str, headless: bool, viewport: tuple[int, int]) -> tuple[int, int]:
        dw, dh = self._known.get((key, headless), GUESSED_CHROME)
        return viewport[0] + dw, viewport[1] + dh

    def learn(self, key: str, headless: bool, chrome: tuple[int, int] | None) -> None:
        if chrome is not None and chrome[0] >= 0 and chrome[1] >= 0:
            self._known[(key, headless)] = chrome


class _Cdp:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send(orjson.dumps(message).decode())
        while True:
            answer = orjson.loads(await self.ws.recv())
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})


async def _inner(cdp: _Cdp, session: str) -> tuple[int, int]:
    found = await cdp.send(
        "Runtime.evaluate", {"expression": "[innerWidth, innerHeight]", "returnByValue": True}, session
    )
    width, height = found["result"]["value"]
    return int(width), int(height)


async def fit(ws_url: str, viewport: tuple[int, int], timeout: float = 5.0) -> tuple[int, int] | None:
    """Make the first page's viewport `viewport`; the window chrome measured (None: no page to measure,
    or the browser would not say). Never raises: a browser that cannot be fitted keeps its window."""
    try:
        async with asyncio.timeout(timeout):
            async with connect(ws_url, max_size=None, open_timeout=timeout) as ws:
                return await _fit(_Cdp(ws), viewport)
    except Exception as exc:
        log.warning("viewport_fit_failed", error=repr(exc))
        return None


async def _fit(cdp: _Cdp, viewport: tuple[int, int]) -> tuple[int, int] | None:
    for _ in range(40):  # the first page may come a moment after the endpoint answers
        targets = (await cdp.send("Target.getTargets"))["targetInfos"]
        page = next((t for t in targets if t["type"] == "page" and not t["url"].startswith("chrome")), None)
        if page is not None:
            break
        await asyncio.sleep(0.025)
    else:
        return None
    session = (await cdp.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}))["sessionId"]
    try:
        window = await cdp.send("Browser.getWindowForTarget", {"targetId": page["targetId"]})
        bounds = window["bounds"]
        inner = await _inner(cdp, session)
        chrome = (bounds["width"] - inner[0], bounds["height"] - inner[1])
        if inner == viewport:
            return chrome
        if bounds.get("windowState", "normal") != "normal":
            await cdp.send(
                "Browser.setWindowBounds", {"windowId": window["windowId"], "bounds": {"windowState": "normal"}}
            )
        size = {"width": viewport[0] + chrome[0], "height": viewport[1] + chrome[1]}
        await cdp.send("Browser.setWindowBounds", {"windowId": window["windowId"], "bounds": size})
        for _ in range(100):
            inner = await _inner(cdp, session)
            if inner == viewport:
                break
            await asyncio.sleep(0.01)
        else:
            log.warning("viewport_not_fitted", asked=viewport, got=inner, chrome=chrome)
        return chrome
    finally:
        with contextlib.suppress(Exception):
            await cdp.send("Target.detachFromTarget", {"sessionId": session})

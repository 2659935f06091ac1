"""One CDP connection per running browser for the API's in-browser operations, kept between calls
(connecting costs tens of milliseconds) and closed when the run ends.

Operations of one browser run one at a time in this process (the `lock`), so a batch of actions has
nothing interleaved; across processes the controller lock orders them (app/browsing/access.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import structlog

from app.cdp.client import CdpClient

log = structlog.get_logger(__name__)


@dataclass(eq=False)  # one link per run, told apart by identity (a key of per-link state)
class Link:
    ws_url: str
    client: CdpClient | None = None
    # Flattened CDP sessions of page targets this link attached to, by target id.
    sessions: dict[str, str] = field(default_factory=dict)
    # The page computer-use actions go to: the last one opened or activated through the API.
    active_page: str | None = None
    # Computer use (app/browsing/computer.py): where the pointer was last moved, and the run's clipboard.
    cursor: tuple[float, float] | None = None
    clipboard: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Who else wants the browser's events (an operation waiting for a page's load, the dialog watch of
    # computer use): called in order after the link's own bookkeeping, whatever client is connected.
    listeners: list[Callable[[str, dict, str | None], None]] = field(default_factory=list)

    @contextlib.contextmanager
    def listening(self, handler: Callable[[str, dict, str | None], None]) -> Iterator[None]:
        """Hand the browser's events to `handler` while the block runs."""
        self.listeners.append(handler)
        try:
            yield
        finally:
            self.listeners.remove(handler)

    def _on_event(self, method: str, params: dict, session: str | None) -> None:
        for handler in list(self.listeners):
            try:
                handler(method, params, session)
            except Exception:
                log.warning("browser_event_listener_failed", method=method, exc_info=True)
        if method == "Target.detachedFromTarget":
            for target, session in list(self.sessions.items()):
                if session == params.get("sessionId"):
                    del self.sessions[target]
        elif method == "Target.targetDestroyed" and params.get("targetId") == self.active_page:
            self.active_page = None

    async def connected(self) -> CdpClient:
        if self.client is None or self.client.closed.is_set():
            self.sessions.clear()
            self.client = await CdpClient.open(self.ws_url, self._on_event)
            await self.client.send("Target.setDiscoverTargets", {"discover": True})
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


class BrowserLinks:
    """The links of this process, by run (a new run of a browser is a new browser process)."""

    def __init__(self) -> None:
        self._links: dict[uuid.UUID, Link] = {}

    def link(self, run_id: uuid.UUID, ws_url: str) -> Link:
        link = self._links.get(run_id)
        if link is None or link.ws_url != ws_url:
            link = self._links[run_id] = Link(ws_url)
        return link

    async def forget(self, run_id: uuid.UUID) -> None:
        link = self._links.pop(run_id, None)
        if link is not None:
            await link.close()

    async def close(self) -> None:
        for run_id in list(self._links):
            with contextlib.suppress(Exception):
                await self.forget(run_id)

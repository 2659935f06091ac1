"""What every proxied socket does besides moving bytes: hub registration, lease expiry, events and
command statistics. The relays (`proxy.py` over ASGI, `splice.py` over raw TCP) subclass it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import orjson
import structlog

from app.cdp.commands import CommandStats
from app.connections.service import AttachTicket
from app.core import clock, metrics
from app.core.context import AppContext
from app.runs import events

log = structlog.get_logger(__name__)

STATS_FLUSH_SECONDS = 5.0


class ProxySession:
    def __init__(self, ctx: AppContext, ticket: AttachTicket, path: str, user_agent: str | None) -> None:
        self.ctx = ctx
        self.ticket = ticket
        self.connection_id: uuid.UUID = ticket.connection_id
        self.run_id: uuid.UUID = ticket.run_id
        self.path = path
        self.user_agent = user_agent
        self.stats = CommandStats()
        self._started = time.monotonic()
        self._expiry: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Task | None = None
        self._flushing: asyncio.Future | None = None
        self._ended = False

    def on_client_text(self, text: str) -> None:
        """A client-to-browser text frame (or its first bytes): counted, and download settings noted."""
        self.stats.on_client(text)
        metrics.CDP_MESSAGES_FROM_CLIENT.inc()
        if "Browser.setDownloadBehavior" in text:
            self._note_download_behavior(text)

    def _note_download_behavior(self, text: str) -> None:
        # The observer looks for downloaded files where the client told the browser to put them.
        try:
            params = orjson.loads(text).get("params") or {}
        except orjson.JSONDecodeError:
            log.warning("download_behavior_unreadable", connection_id=str(self.connection_id))
            return
        self.ctx.events.emit(
            self.run_id,
            "download.behavior",
            "connection",
            {
                "behavior": params.get("behavior"),
                "browserContextId": params.get("browserContextId"),
                "downloadPath": params.get("downloadPath"),
            },
            source="cdp",
            connection_id=self.connection_id,
        )

    def close(self, code: int, reason: str) -> None:
        """Close both sides with `code` and `reason` (called by the hub, expiry and shutdown)."""
        raise NotImplementedError

    async def opened(self) -> None:
        self.ctx.hub.add(self)
        metrics.cdp_connections.inc()
        metrics.cdp_connections_opened.inc()
        if self.ticket.expires_at is not None:
            delay = max(0.0, (self.ticket.expires_at - clock.now()).total_seconds())
            self._expiry = asyncio.get_running_loop().call_later(delay, self.close, 1000, "lease expired")
        self._flusher = asyncio.create_task(self._flush_forever())
        # The process it is attached through: if that process dies, another one's sweep writes the detach.
        await self.event(
            "connection.attached",
            {"path": self.path, "userAgent": self.user_agent, "serverInstance": self.ctx.driver.instance},
        )

    async def ended(self, ended_by: str, code: int, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.ctx.hub.remove(self)
        if self._flusher is not None:  # opened (the upgrade went through)
            metrics.cdp_connections.dec()
        if self._expiry is not None:
            self._expiry.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._flushing is not None and not self._flushing.done():
            with contextlib.suppress(Exception):
                await self._flushing  # its counts first, then what is left
        await self.flush_stats()
        data = {
            "endedBy": ended_by,
            "code": code,
            "reason": reason,
            "durationMs": round((time.monotonic() - self._started) * 1000),
            "serverInstance": self.ctx.driver.instance,
        }
        try:
            async with self.ctx.db.transaction() as s:
                # Not when another process wrote it already, having judged this one dead (its lease lapsed).
                if await events.still_attached(s, self.run_id, self.connection_id, self.ctx.driver.instance):
                    await events.append(
                        s,
                        self.run_id,
                        "connection.detached",
                        "connection",
                        data,
                        source="cdp",
                        connection_id=self.connection_id,
                    )
        except Exception:
            log.exception("connection_event_failed", type="connection.detached", connection_id=str(self.connection_id))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(STATS_FLUSH_SECONDS)
            # Shielded: the socket's end cancels this loop, and a flush cut mid-write would lose the
            # counts it had drained (seen on a loaded host: a run's commands all missing).
            self._flushing = asyncio.ensure_future(self.flush_stats())
            await asyncio.shield(self._flushing)

    async def flush_stats(self) -> None:
        data = self.stats.drain()
        if data:
            await self.event("connection.command", data)

    async def event(self, type_: str, data: dict) -> None:
        try:
            async with self.ctx.db.transaction() as s:
                await events.append(
                    s, self.run_id, type_, "connection", data, source="cdp", connection_id=self.connection_id
                )
        except Exception:
            log.exception("connection_event_failed", type=type_, connection_id=str(self.connection_id))

"""The CDP proxy: `/v1/cdp/{connectionId}` relays a client's websocket to the browser's own.

Every check happens once, before the upgrade (token, lease, runtime, controller lock); a refusal
is an HTTP error in the usual envelope. After that, frames are relayed as they are: browser
frames are not parsed, client frames are only scanned for their method (`commands.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import structlog
import websockets
from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketState
from websockets.asyncio.client import connect as ws_connect

from app.cdp.commands import CommandStats
from app.connections import service as connections
from app.connections.service import AttachTicket
from app.core import clock
from app.core.context import AppContext
from app.core.errors import DomainError
from app.core.responses import JSONResponse
from app.runs import events

log = structlog.get_logger(__name__)

STATS_FLUSH_SECONDS = 5.0


class Relay:
    """One client socket relayed to one browser socket."""

    def __init__(self, ctx: AppContext, websocket: WebSocket, ticket: AttachTicket, upstream_url: str) -> None:
        self.ctx = ctx
        self.websocket = websocket
        self.ticket = ticket
        self.upstream_url = upstream_url
        self.connection_id: uuid.UUID = ticket.connection_id
        self.run_id: uuid.UUID = ticket.run_id
        self.stats = CommandStats()
        self._closing = asyncio.Event()
        self._close_with: tuple[int, str] | None = None
        self._client_code: int | None = None
        self._ended_by: str | None = None

    def close(self, code: int, reason: str) -> None:
        if self._close_with is None:
            self._close_with = (code, reason)
        self._closing.set()

    async def run(self) -> None:
        try:
            upstream = await ws_connect(self.upstream_url, max_size=None, compression=None, ping_interval=None,
                                        open_timeout=10, max_queue=None, write_limit=2**22)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            log.warning("upstream_unreachable", connection_id=str(self.connection_id), error=repr(exc))
            await self.websocket.close(1011, "browser unreachable")
            return
        started = time.monotonic()
        self.ctx.hub.add(self)
        await self._event("connection.attached", {"path": self.websocket.url.path,
                                                   "userAgent": self.websocket.headers.get("user-agent")})
        tasks = [asyncio.create_task(self._client_to_browser(upstream)),
                 asyncio.create_task(self._browser_to_client(upstream)),
                 asyncio.create_task(self._closing.wait()),
                 asyncio.create_task(self._flush_stats_forever())]
        expiry = self._schedule_expiry()
        try:
            done, _ = await asyncio.wait(tasks[:3], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if expiry is not None:
                expiry.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            self.ctx.hub.remove(self)
        ended_by, code, reason = self._ending(tasks, upstream)
        with contextlib.suppress(Exception):
            await upstream.close()
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code, reason)
        await self._flush_stats()
        await self._event("connection.detached", {"endedBy": ended_by, "code": code, "reason": reason,
                                                   "durationMs": round((time.monotonic() - started) * 1000)})

    def _ending(self, tasks, upstream) -> tuple[str, int, str]:
        if self._close_with is not None:
            return "server", *self._close_with
        if self._ended_by == "client":
            return "client", self._client_code or 1005, ""
        return "browser", 1001, "browser closed the connection"

    def _end(self, by: str) -> None:
        if self._ended_by is None:
            self._ended_by = by

    async def _client_to_browser(self, upstream) -> None:
        receive, on_client = self.websocket.receive, self.stats.on_client
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    self._client_code = message.get("code")
                    self._end("client")
                    return
                text = message.get("text")
                if text is not None:
                    on_client(text)
                    await upstream.send(text)
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])
        except websockets.ConnectionClosed:
            self._end("browser")

    async def _browser_to_client(self, upstream) -> None:
        send, on_browser = self.websocket.send, self.stats.on_browser
        try:
            async for frame in upstream:
                if isinstance(frame, str):
                    on_browser(frame)
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except websockets.ConnectionClosed:
            pass
        self._end("browser")

    def _schedule_expiry(self) -> asyncio.TimerHandle | None:
        if self.ticket.expires_at is None:
            return None
        delay = max(0.0, (self.ticket.expires_at - clock.now()).total_seconds())
        return asyncio.get_running_loop().call_later(delay, self.close, 1000, "lease expired")

    async def _flush_stats_forever(self) -> None:
        while True:
            await asyncio.sleep(STATS_FLUSH_SECONDS)
            await self._flush_stats()

    async def _flush_stats(self) -> None:
        data = self.stats.drain()
        if data:
            await self._event("connection.command", data)

    async def _event(self, type_: str, data: dict) -> None:
        try:
            async with self.ctx.db.transaction() as s:
                await events.append(s, self.run_id, type_, "connection", data, source="cdp",
                                    connection_id=self.connection_id)
        except Exception:
            log.exception("connection_event_failed", type=type_, connection_id=str(self.connection_id))


router = APIRouter(prefix="/v1/cdp", tags=["cdp"])


async def _refuse(websocket: WebSocket, error: DomainError) -> None:
    """Refuse before the upgrade: an HTTP error in the envelope where the server can send one."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = {"error": error.message, "code": error.code, "requestId": None, "details": error.details}
        await websocket.send_denial_response(JSONResponse(body, status_code=error.status))
    else:
        await websocket.close(1008, f"{error.code}: {error.message}"[:120])


async def _attach(websocket: WebSocket, connection_id: str, token: str | None, upstream_path: str | None) -> None:
    ctx: AppContext = websocket.app.state.ctx
    try:
        ticket = await connections.authorize_attach(ctx, connection_id, token)
    except DomainError as error:
        await _refuse(websocket, error)
        return
    upstream = ticket.upstream_ws if upstream_path is None else (
        ticket.upstream_http.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + upstream_path)
    await websocket.accept()
    await Relay(ctx, websocket, ticket, upstream).run()


@router.websocket("/{connection_id}")
async def browser_socket(websocket: WebSocket, connection_id: str, token: str | None = Query(None)) -> None:
    """The browser-level CDP socket (what Playwright and Puppeteer connect to)."""
    await _attach(websocket, connection_id, token, None)


@router.websocket("/{connection_id}/devtools/{kind}/{target_id}")
async def target_socket(websocket: WebSocket, connection_id: str, kind: str, target_id: str,
                        token: str | None = Query(None)) -> None:
    """A target-level socket, as listed by /json/list."""
    if kind not in ("page", "browser", "worker", "service_worker", "shared_worker", "iframe") or \
            not target_id.replace("-", "").isalnum():
        await websocket.close(1008, "unknown target")
        return
    await _attach(websocket, connection_id, token, f"/devtools/{kind}/{target_id}")

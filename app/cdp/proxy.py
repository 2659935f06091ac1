"""The CDP proxy routes: `/v1/cdp/{connectionId}` (browser socket) and `.../devtools/{kind}/{id}`.

Every check happens once, before the upgrade (token, lease, runtime, controller lock); a refusal
is an HTTP error in the usual envelope. `bctrl-server serve` answers these paths with the raw TCP
splice of `splice.py`; the ASGI relay here is the same proxy for any other ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
import websockets
from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketState
from websockets.asyncio.client import connect as ws_connect

from app.cdp import guard
from app.cdp.session import ProxySession
from app.connections import service as connections
from app.connections.service import AttachTicket
from app.core import metrics
from app.core.context import AppContext
from app.core.errors import DomainError, backend_unavailable, error_body
from app.core.responses import JSONResponse

log = structlog.get_logger(__name__)

TARGET_KINDS = ("page", "browser", "worker", "service_worker", "shared_worker", "iframe")


def valid_target(kind: str, target_id: str) -> bool:
    return kind in TARGET_KINDS and 0 < len(target_id) <= 64 and target_id.replace("-", "").isalnum()


def upstream_url(ticket: AttachTicket, target_path: str | None) -> str:
    if target_path is None:
        return ticket.upstream_ws
    return ticket.upstream_http.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + target_path


class AsgiRelay(ProxySession):
    """One client socket relayed message by message to the browser's socket."""

    def __init__(self, ctx: AppContext, websocket: WebSocket, ticket: AttachTicket, upstream: str) -> None:
        super().__init__(ctx, ticket, websocket.url.path, websocket.headers.get("user-agent"))
        self.websocket = websocket
        self.upstream = upstream
        self._upload_dirs = guard.upload_dirs(ctx, ticket.runtime_id, ticket.run_id)
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
            upstream = await ws_connect(
                self.upstream, max_size=None, compression=None, ping_interval=None, open_timeout=10, max_queue=None
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            log.warning("upstream_unreachable", connection_id=str(self.connection_id), error=repr(exc))
            await self.websocket.close(1011, "browser unreachable")
            return
        await self.opened()
        tasks = [
            asyncio.create_task(self._client_to_browser(upstream)),
            asyncio.create_task(self._browser_to_client(upstream)),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._close_with is not None:
            ended_by, (code, reason) = "server", self._close_with
        elif self._ended_by == "client":
            ended_by, code, reason = "client", self._client_code or 1005, ""
        else:
            ended_by, code, reason = "browser", 1001, "browser closed the connection"
        with contextlib.suppress(Exception):
            await upstream.close()
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code, reason)
        await self.ended(ended_by, code, reason)

    def _end(self, by: str) -> None:
        if self._ended_by is None:
            self._ended_by = by

    async def _client_to_browser(self, upstream) -> None:
        receive, on_client = self.websocket.receive, self.on_client_text
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
                    metrics.CDP_BYTES_FROM_CLIENT.inc(len(text))  # characters: close enough, and free
                    if (refused := guard.check(text.encode(), self._upload_dirs)) is not None:
                        await self.websocket.send(
                            {"type": "websocket.send", "text": guard.error_reply(*refused).decode()}
                        )
                        continue
                    await upstream.send(text)
                elif message.get("bytes") is not None:
                    metrics.CDP_BYTES_FROM_CLIENT.inc(len(message["bytes"]))
                    await upstream.send(message["bytes"])
        except websockets.ConnectionClosed:
            self._end("browser")

    async def _browser_to_client(self, upstream) -> None:
        send, on_browser = self.websocket.send, self.stats.on_browser
        try:
            async for frame in upstream:
                metrics.CDP_BYTES_FROM_BROWSER.inc(len(frame))
                if isinstance(frame, str):
                    on_browser(frame)
                    metrics.CDP_MESSAGES_FROM_BROWSER.inc()
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except websockets.ConnectionClosed:
            pass
        self._end("browser")


router = APIRouter(prefix="/v1/cdp", tags=["cdp"])


async def _refuse(websocket: WebSocket, error: DomainError) -> None:
    """Refuse before the upgrade: an HTTP error in the envelope where the server can send one."""
    metrics.cdp_attach_refusals.labels(error.code).inc()
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = error_body(error.code, error.message, error.details, None)
        await websocket.send_denial_response(JSONResponse(body, status_code=error.status, headers=error.headers))
    else:
        # 1013 "try again later" for an outage, 1008 for a refusal.
        await websocket.close(1013 if error.status == 503 else 1008, f"{error.code}: {error.message}"[:120])


async def _attach(websocket: WebSocket, connection_id: str, token: str | None, target_path: str | None) -> None:
    ctx: AppContext = websocket.app.state.ctx
    try:
        ticket = await connections.authorize_attach(ctx, connection_id, token)
    except DomainError as error:
        await _refuse(websocket, error)
        return
    except Exception as exc:
        # An outage is refused with its code (503 database.unavailable, ...), never an abrupt close.
        if (unavailable := backend_unavailable(exc)) is None:
            raise
        await _refuse(websocket, unavailable)
        return
    await websocket.accept()
    await AsgiRelay(ctx, websocket, ticket, upstream_url(ticket, target_path)).run()


@router.websocket("/{connection_id}")
async def browser_socket(websocket: WebSocket, connection_id: str, token: str | None = Query(None)) -> None:
    """The browser-level CDP socket (what Playwright and Puppeteer connect to)."""
    await _attach(websocket, connection_id, token, None)


@router.websocket("/{connection_id}/devtools/{kind}/{target_id}")
async def target_socket(
    websocket: WebSocket, connection_id: str, kind: str, target_id: str, token: str | None = Query(None)
) -> None:
    """A target-level socket, as listed by /json/list."""
    if not valid_target(kind, target_id):
        await websocket.close(1008, "unknown target")
        return
    await _attach(websocket, connection_id, token, f"/devtools/{kind}/{target_id}")

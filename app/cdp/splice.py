"""The fast path of the CDP proxy: after the lease checks, the client's TCP stream is spliced to
the browser's. No frame is decoded or re-encoded.

This works because websocket framing is direction-specific, not connection-specific: the client's
frames are masked, which is what the browser (a server) expects, and the browser's are unmasked,
which is what the client expects. The browser's handshake answer is valid for the client because
the client's own `Sec-WebSocket-Key` is forwarded. A `FrameScanner` on each direction follows frame
boundaries (to read method names, reply ids and close codes, and to inject a close frame cleanly).

`bctrl-server serve` installs `websocket_protocol(app)` as uvicorn's websocket protocol: upgrades
under /v1/cdp/ are spliced here; every other websocket goes to uvicorn's own implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
import structlog

from app.cdp import guard
from app.cdp.frames import CLOSE, TEXT, FrameScanner, close_frame, frame_length, parse_frame, text_frame
from app.cdp.proxy import upstream_url, valid_target
from app.cdp.session import ProxySession
from app.connections import service as connections
from app.connections.service import AttachTicket
from app.core import metrics
from app.core.context import AppContext
from app.core.errors import DomainError, backend_unavailable, error_body

log = structlog.get_logger(__name__)

PREFIX = "/v1/cdp/"
HANDSHAKE_TIMEOUT = 10.0
CLOSE_GRACE_SECONDS = 2.0
# A client frame is held until whole (the guard reads it); larger ones are refused with 1009.
CLIENT_FRAME_LIMIT = 64 * 1024 * 1024


def _http_response(status: int, body: dict, headers: dict[str, str] | None = None) -> bytes:
    payload = orjson.dumps(body)
    phrase = HTTPStatus(status).phrase
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
    ).encode() + payload


def _keepalive(transport: asyncio.Transport) -> None:
    """A client that vanishes without a FIN (cable pulled, VM frozen) is noticed within about a minute."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class _BrowserSide(asyncio.Protocol):
    def __init__(self, splice: Splice) -> None:
        self.splice = splice
        self.head = bytearray()
        self.handshake: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.handshake.done():
            self.splice.from_browser(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end >= 0:
            self.handshake.set_result(bytes(self.head[: end + 4]))
            rest = bytes(self.head[end + 4 :])
            self.head = bytearray()
            if rest:
                self.splice.pending_from_browser.append(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("browser closed during the handshake"))
        self.splice.browser_lost()

    def pause_writing(self) -> None:
        self.splice.client.pause_reading()

    def resume_writing(self) -> None:
        self.splice.client.resume_reading()


class Splice(ProxySession):
    def __init__(
        self,
        ctx: AppContext,
        ticket: AttachTicket,
        client: asyncio.Transport,
        path: str,
        headers: dict[str, str],
        target_path: str | None,
    ) -> None:
        super().__init__(ctx, ticket, path, headers.get("user-agent"))
        self.client = client
        self.headers = headers
        self.upstream = upstream_url(ticket, target_path)
        self.browser: asyncio.Transport | None = None
        self.pending_from_browser: list[bytes] = []
        # Client frames are small and some carry settings worth reading whole (download paths).
        self._client_buf = bytearray()
        self._upload_dirs = guard.upload_dirs(ctx, ticket.runtime_id, ticket.run_id)
        self.browser_frames = FrameScanner(self._browser_frame)
        self._client_code: int | None = None
        self._close_with: tuple[int, str] | None = None
        self._closed = False
        self._ended_by: str | None = None
        self._ending: asyncio.Task | None = None

    # --- opening ---

    async def open(self) -> bool:
        parts = urlsplit(self.upstream)
        loop = asyncio.get_running_loop()
        try:
            self.browser, side = await asyncio.wait_for(
                loop.create_connection(lambda: _BrowserSide(self), parts.hostname, parts.port), HANDSHAKE_TIMEOUT
            )
            self.browser.write(
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.headers['sec-websocket-key']}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = await asyncio.wait_for(side.handshake, HANDSHAKE_TIMEOUT)
            if self._closed:  # the client left while we were connecting
                self.browser.close()
                return False
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("upstream_unreachable", connection_id=str(self.connection_id), error=repr(exc))
            self._reply(502, "runtime.host_unavailable", "The browser did not answer")
            if self.browser is not None:
                self.browser.close()
            return False
        if not head.startswith(b"HTTP/1.1 101"):
            self._reply(502, "runtime.host_unavailable", "The browser refused the connection")
            self.browser.close()
            return False
        self.client.write(head)
        for chunk in self.pending_from_browser:
            self.from_browser(chunk)
        self.pending_from_browser.clear()
        await self.opened()
        self.client.resume_reading()
        return True

    def _reply(self, status: int, code: str, message: str, details: dict | None = None) -> None:
        self.client.write(_http_response(status, error_body(code, message, details, None)))
        self.client.close()

    # --- relaying ---

    def from_client(self, data: bytes) -> None:
        # Once a close is pending (expiry, stop), the client no longer drives the browser.
        if self._closed or self.browser is None or self._close_with is not None:
            return
        # Client frames go on whole, after the guard read them (they are requests, mostly small).
        buf = self._client_buf
        buf += data
        metrics.CDP_BYTES_FROM_CLIENT.inc(len(data))
        while (lengths := frame_length(buf)) is not None:
            header, size = lengths
            if size > CLIENT_FRAME_LIMIT:
                self.client.write(close_frame(1009, "message too big"))
                self._shutdown("server", 1009, "message too big")
                return
            if len(buf) < header + size:
                return
            raw = bytes(buf[: header + size])
            del buf[: header + size]
            fin, opcode, payload = parse_frame(raw)
            if opcode == 0 or (opcode == TEXT and not fin):
                # Fragmented messages would hide a command from the guard (Chromium takes none either).
                self.client.write(close_frame(1003, "fragmented messages are not accepted"))
                self._shutdown("server", 1003, "fragmented messages are not accepted")
                return
            self._client_frame(opcode, payload[:4096])
            if opcode == TEXT and (refused := guard.check(payload, self._upload_dirs)) is not None:
                log.info(
                    "cdp_command_refused",
                    connection_id=str(self.connection_id),
                    method=str(refused[0].get("method"))[:64],
                )
                self.client.write(text_frame(guard.error_reply(*refused)))
                continue
            self.browser.write(raw)

    def from_browser(self, data: bytes) -> None:
        if self._closed:
            return
        if self._close_with is not None:
            # A close is waiting for the end of the frame being relayed.
            used = self.browser_frames.feed(data, stop_at_boundary=True)
            self.client.write(data[:used])
            if self.browser_frames.at_boundary:
                self._finish_close()
            return
        self.browser_frames.feed(data)
        self.client.write(data)
        metrics.CDP_BYTES_FROM_BROWSER.inc(len(data))

    def _client_frame(self, opcode: int, prefix: bytes) -> None:
        if opcode == TEXT:
            self.on_client_text(prefix.decode("utf-8", "ignore"))
        elif opcode == CLOSE and len(prefix) >= 2:
            self._client_code = int.from_bytes(prefix[:2], "big")

    def _browser_frame(self, opcode: int, prefix: bytes) -> None:
        if opcode == TEXT:
            self.stats.on_browser(prefix.decode("utf-8", "ignore"))
            metrics.CDP_MESSAGES_FROM_BROWSER.inc()

    # --- closing ---

    def close(self, code: int, reason: str) -> None:
        if self._closed or self._close_with is not None:
            return
        self._close_with = (code, reason)
        if self.browser_frames.at_boundary:
            self._finish_close()
        else:
            # A client that stops reading could hold a frame open forever: cut it off soon regardless.
            asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self._shutdown, "server", code, reason)

    def _finish_close(self) -> None:
        code, reason = self._close_with
        self.client.write(close_frame(code, reason))
        self._shutdown("server", code, reason)

    def client_lost(self, exc: Exception | None) -> None:
        self._shutdown("client", self._client_code or 1006, "" if self._client_code else "connection lost")

    def browser_lost(self) -> None:
        if not self._closed and not self.client.is_closing():
            if self.browser_frames.at_boundary:
                self.client.write(close_frame(1001, "browser closed the connection"))
        self._shutdown("browser", 1001, "browser closed the connection")

    def _shutdown(self, by: str, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self.browser is not None:
            self.browser.close()
        self.client.close()
        self._ending = asyncio.get_running_loop().create_task(self.ended(by, code, reason))


def _parse_head(raw: bytes) -> tuple[str, str, dict[str, str]]:
    head = raw.decode("latin-1")
    request_line, *lines = head.split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def websocket_protocol(app, fallback: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """A uvicorn websocket protocol class: splices /v1/cdp/ upgrades, hands the rest to `fallback`."""

    class CdpOrWebSocket(asyncio.Protocol):
        def __init__(self, config, server_state, app_state) -> None:
            self._args = (config, server_state, app_state)
            self._transport: asyncio.Transport | None = None
            self._delegate: asyncio.Protocol | None = None
            self._splice: Splice | None = None
            self._task: asyncio.Task | None = None

        def connection_made(self, transport) -> None:
            self._transport = transport

        def data_received(self, data: bytes) -> None:
            if self._splice is not None:
                self._splice.from_client(data)
            elif self._delegate is not None:
                self._delegate.data_received(data)
            else:
                self._first(data)

        def _first(self, data: bytes) -> None:
            method, target, headers = _parse_head(data)
            url = urlsplit(target)
            if not url.path.startswith(PREFIX):
                self._delegate = fallback(*self._args)
                self._delegate.connection_made(self._transport)
                self._delegate.data_received(data)
                return
            self._transport.pause_reading()
            token = parse_qs(url.query).get("token", [None])[0]
            self._task = asyncio.get_running_loop().create_task(self._attach(url.path, token, headers))

        async def _attach(self, path: str, token: str | None, headers: dict[str, str]) -> None:
            ctx: AppContext = app.state.ctx
            parts = path[len(PREFIX) :].split("/")
            target_path = None
            if len(parts) == 4 and parts[1] == "devtools" and valid_target(parts[2], parts[3]):
                target_path = f"/devtools/{parts[2]}/{parts[3]}"
            if (len(parts) != 1 and target_path is None) or "sec-websocket-key" not in headers:
                self._refuse(404, "route.not_found", "No such CDP endpoint")
                return
            try:
                ticket = await connections.authorize_attach(ctx, parts[0], token)
                _keepalive(self._transport)
                self._splice = Splice(ctx, ticket, self._transport, path, headers, target_path)
                if not await self._splice.open():
                    self._splice = None
            except DomainError as error:
                self._refuse(error.status, error.code, error.message, error.details, error.headers)
            except Exception as exc:
                if self._splice is not None:
                    self._splice.client_lost(None)
                if (unavailable := backend_unavailable(exc)) is not None:
                    # An outage: refused like the REST API refuses (503, code, Retry-After), not a 500.
                    log.warning("cdp_attach_backend_unavailable", code=unavailable.code)
                    self._refuse(503, unavailable.code, unavailable.message, unavailable.details, unavailable.headers)
                    return
                log.exception("cdp_attach_failed")
                self._refuse(500, "server.error", "Internal server error")

        def _refuse(
            self,
            status: int,
            code: str,
            message: str,
            details: dict | None = None,
            headers: dict[str, str] | None = None,
        ) -> None:
            metrics.cdp_attach_refusals.labels(code).inc()
            if not self._transport.is_closing():
                self._transport.write(_http_response(status, error_body(code, message, details, None), headers))
                self._transport.close()

        def connection_lost(self, exc) -> None:
            if self._splice is not None:
                self._splice.client_lost(exc)
            elif self._delegate is not None:
                self._delegate.connection_lost(exc)
            elif self._task is not None:
                self._task.cancel()

        def eof_received(self):
            if self._delegate is not None:
                return self._delegate.eof_received()
            return False

        def pause_writing(self) -> None:
            if self._splice is not None and self._splice.browser is not None:
                self._splice.browser.pause_reading()
            elif self._delegate is not None:
                self._delegate.pause_writing()

        def resume_writing(self) -> None:
            if self._splice is not None and self._splice.browser is not None:
                self._splice.browser.resume_reading()
            elif self._delegate is not None:
                self._delegate.resume_writing()

    return CdpOrWebSocket

"""The egress proxy: an HTTP forward proxy (CONNECT tunnels and plain-HTTP requests) on a port of
this server, which every browser is told to use for every destination, loopback included.

Each destination is resolved here, every address it resolves to is checked against the policy,
and the connection goes to the checked address (a name that resolves differently a moment later
cannot slip through). Refusals are 403 with a short plain-text reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket

import structlog

from app.egress.policy import EgressPolicy, normalize

log = structlog.get_logger(__name__)

HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024
_HOP_HEADERS = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization", b"proxy-authenticate"}


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _response(status: int, reason: str) -> bytes:
    body = f"bctrl egress policy: {reason}\n".encode()
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nX-Bctrl-Egress: refused\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _split_hostport(value: str, default_port: int) -> tuple[str, int]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not host:
        raise Refused(400, "no destination host")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise Refused(400, "bad destination port") from None
    if not 0 < number < 65536:
        raise Refused(400, "bad destination port")
    return host, number


class EgressProxy:
    def __init__(self, policy: EgressPolicy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.policy = policy
        self.host, self.port = host, port
        self._server: asyncio.AbstractServer | None = None
        self._more: dict[int, asyncio.AbstractServer] = {}  # ports of adopted browsers' proxies
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        # The proxy is part of the control plane: a browser may not use it to reach itself.
        self.policy.local_blocked.add(self.port)

    async def also_serve(self, url: str) -> None:
        """Listen on the port of `url` too: an adopted browser was launched against an earlier server's
        proxy (its flags and policy cannot be changed), so this one answers there as well."""
        port = int(url.rsplit(":", 1)[1])
        if port == self.port or port in self._more:
            return
        self._more[port] = await asyncio.start_server(self._serve, self.host, port, limit=HEAD_LIMIT)
        self.policy.local_blocked.add(port)
        log.info("egress_proxy_also_serving", port=port)

    async def close(self) -> None:
        for server in self._more.values():
            server.close()
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            try:
                up_reader, upstream, first = await self._open(head)
            except Refused as exc:
                writer.write(_response(exc.status, exc.reason))
                await writer.drain()
                return
            if first is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.write(first)
            await asyncio.gather(
                self._pipe(reader, upstream), self._pipe(up_reader, writer, rewrite_head=first is not None)
            )
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (upstream, writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _open(self, head: bytes):
        """Connect to the request's destination if the policy allows it; returns the bytes to send first
        (None for a CONNECT tunnel)."""
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise Refused(400, "malformed request line") from None
        if method == "CONNECT":
            host, port = _split_hostport(target, 443)
            first = None
        else:
            if not target.startswith("http://"):
                raise Refused(400, "only http:// URLs and CONNECT tunnels go through this proxy")
            authority, _, path = target[len("http://") :].partition("/")
            host, port = _split_hostport(authority.rsplit("@", 1)[-1], 80)
            kept = [line for line in lines[1:] if line and line.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS]
            first = (
                f"{method} /{path} {version}\r\n".encode()
                + b"".join(line + b"\r\n" for line in kept)
                + b"Connection: close\r\n\r\n"
            )
        addresses = await self._resolve(host, port)
        for ip in addresses:
            reason = self.policy.refusal(ip, port)
            if reason:
                log.info("egress_refused", host=host[:253], port=port, address=str(ip), reason=reason)
                raise Refused(403, f"{host}:{port} is refused: {reason}")
        last: Exception | None = None
        for ip in addresses:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(str(ip), port, limit=CHUNK), CONNECT_TIMEOUT
                )
                return up_reader, up_writer, first
            except (OSError, TimeoutError) as exc:
                last = exc
        raise Refused(502, f"{host}:{port} did not accept the connection ({type(last).__name__})")

    async def _resolve(self, host: str, port: int) -> list:
        try:
            return [normalize(ipaddress.ip_address(host))]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise Refused(502, f"{host[:253]} could not be resolved") from None
        seen: list = []
        for info in infos:
            ip = normalize(ipaddress.ip_address(info[4][0].split("%")[0]))
            if ip not in seen:
                seen.append(ip)
        if not seen:
            raise Refused(502, f"{host[:253]} could not be resolved")
        return seen

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rewrite_head: bool = False
    ) -> None:
        try:
            if rewrite_head:
                # One request per connection upstream: tell the browser so, so it never reuses this one.
                head = await reader.readuntil(b"\r\n\r\n")
                lines = [
                    line
                    for line in head.split(b"\r\n")
                    if line and line.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS
                ]
                writer.write(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n")
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()

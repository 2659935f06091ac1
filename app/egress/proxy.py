"""The egress proxy: an HTTP forward proxy (CONNECT tunnels and plain-HTTP requests) on a port of
this server, which every browser is told to use for every destination, loopback included.

Each destination is resolved here, every address it resolves to is checked against the policy,
and the connection goes to the checked address (a name that resolves differently a moment later
cannot slip through). Refusals are 403 with a short plain-text reason.

A browser with a proxy of its own is given an entrance: a port of its own on this proxy, bound to that
upstream (`entrance`). There the same policy check is made on the destination, and also on the
upstream's address; then the connection leaves through the upstream (app/egress/upstream.py: CONNECT
or SOCKS5 with the credentials; plain-HTTP requests too, in a tunnel to port 80). A proxy on this host
gets the checked address, never the name (it would resolve the name again, on this host).

The ports of open entrances are written to a file of the data directory (ports only, never an upstream or
its credentials). A new server process reserves the ports its predecessor's entrances had: it cannot
restore an adopted browser's upstream (not kept here), so such a browser's traffic is refused there
(502) instead of leaving straight from this host, and no other browser's entrance is opened on that port
(the adopted browser would leave through that browser's upstream, with its credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from pathlib import Path

import structlog

from app.egress import upstream as up
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
    def __init__(
        self, policy: EgressPolicy, host: str = "127.0.0.1", port: int = 0, entrances_file: Path | None = None
    ) -> None:
        self.policy = policy
        self.host, self.port = host, port
        self._server: asyncio.AbstractServer | None = None
        self._more: dict[int, asyncio.AbstractServer] = {}  # ports of adopted browsers' proxies
        self._entrances: dict[int, asyncio.AbstractServer] = {}  # ports of browsers with an upstream
        # Ports of an earlier process's entrances, held so that nothing else answers there (see above).
        self._reserved: dict[int, asyncio.AbstractServer] = {}
        self._entrances_file = entrances_file
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        # The proxy is part of the control plane: a browser may not use it to reach itself.
        self.policy.local_blocked.add(self.port)
        await self._reserve_former_entrances()

    def _former_entrances(self) -> set[int]:
        if self._entrances_file is None:
            return set()
        try:
            text = self._entrances_file.read_text()
        except OSError:
            return set()
        return {int(w) for w in text.split() if w.isdigit() and 0 < int(w) < 65536}

    def _save_entrances(self) -> None:
        if self._entrances_file is None:
            return
        ports = sorted({*self._entrances, *self._reserved})
        with contextlib.suppress(OSError):
            tmp = self._entrances_file.with_name(self._entrances_file.name + ".tmp")
            tmp.write_text("".join(f"{p}\n" for p in ports))
            tmp.replace(self._entrances_file)

    async def _reserve_former_entrances(self) -> None:
        for port in sorted(self._former_entrances() - {self.port}):
            try:
                self._reserved[port] = await asyncio.start_server(self._refuse_lost, self.host, port)
            except OSError:
                continue  # taken meanwhile: nothing of ours answers there
            self.policy.local_blocked.add(port)
            log.warning("egress_entrance_not_restored", port=port)
        self._save_entrances()

    async def _refuse_lost(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            why = "this browser's own proxy was not restored after the server restarted; restart the browser"
            writer.write(_response(502, why))
            await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def also_serve(self, url: str) -> None:
        """Listen on the port of `url` too: an adopted browser was launched against an earlier server's
        proxy (its flags and policy cannot be changed), so this one answers there as well."""
        port = int(url.rsplit(":", 1)[1])
        if port == self.port or port in self._more or port in self._reserved or port in self._entrances:
            # An entrance (reserved above): never served as a plain proxy, which would let the browser
            # leave straight from this host instead of through its upstream proxy.
            return
        self._more[port] = await asyncio.start_server(self._serve, self.host, port, limit=HEAD_LIMIT)
        self.policy.local_blocked.add(port)
        log.info("egress_proxy_also_serving", port=port)

    async def entrance(self, upstream_url: str, restore: str | None = None) -> str:
        """A port of its own for one browser whose traffic leaves through `upstream_url` (after the
        policy); its URL. `restore`: an adopted browser's entrance URL, held since the restart (see
        above), opened again there with its upstream. Raises ValueError for a URL that is not a proxy's,
        OSError when `restore` is not a held entrance or its port cannot be bound."""
        upstream = up.Upstream.parse(upstream_url)
        port = 0
        if restore is not None:
            port = int(restore.rsplit(":", 1)[1])
            held = self._reserved.pop(port, None)
            if held is None:
                raise OSError(f"port {port} is not an entrance held since the restart")
            held.close()
            await held.wait_closed()
        server = await asyncio.start_server(lambda r, w: self._serve(r, w, upstream), self.host, port, limit=HEAD_LIMIT)
        port = server.sockets[0].getsockname()[1]
        self._entrances[port] = server
        # No browser may use another browser's entrance (and through it, that browser's credentials).
        self.policy.local_blocked.add(port)
        self._save_entrances()  # a few bytes, written in order (no thread: two could race)
        log.info("egress_entrance_opened", port=port, upstream=upstream.describe())
        return f"http://{self.host}:{port}"

    async def release(self, url: str | None) -> None:
        """Close a browser's entrance (its browser stopped); other URLs are left alone."""
        try:
            port = int((url or "").rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return
        server = self._entrances.pop(port, None) or self._reserved.pop(port, None)
        if server is not None:
            server.close()
            self.policy.local_blocked.discard(port)
            self._save_entrances()  # a few bytes, written in order (no thread: two could race)
            log.info("egress_entrance_closed", port=port)

    async def close(self) -> None:
        for server in [*self._more.values(), *self._entrances.values(), *self._reserved.values()]:
            server.close()
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: up.Upstream | None = None
    ) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        out: asyncio.StreamWriter | None = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            try:
                up_reader, out, first = await self._open(head, upstream)
            except Refused as exc:
                writer.write(_response(exc.status, exc.reason))
                await writer.drain()
                return
            if first is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                out.write(first)
            await asyncio.gather(self._pipe(reader, out), self._pipe(up_reader, writer, rewrite_head=first is not None))
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (out, writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _open(self, head: bytes, upstream: up.Upstream | None = None):
        """Connect to the request's destination if the policy allows it (through `upstream` when given);
        returns the bytes to send first (None for a CONNECT tunnel)."""
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
            reason = await self._refusal(ip, port)
            if reason:
                log.info("egress_refused", host=host[:253], port=port, address=str(ip), reason=reason)
                raise Refused(403, f"{host}:{port} is refused: {reason}")
        if upstream is not None:
            up_reader, up_writer = await self._through(upstream, host, port, addresses)
            return up_reader, up_writer, first
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

    async def _refusal(self, ip, port: int) -> str | None:
        """The policy's refusal, and a browser's debugging port on this host that the driver does not
        know of (another server's browser, an adopted one, a container on host networking)."""
        reason = self.policy.refusal(ip, port)
        # Only a local address can be a debugging port of this host: no thread hop for the web's.
        local = reason is None and self.policy.is_local(ip)
        if local and await asyncio.to_thread(self.policy.devtools_listener, ip, port):
            reason = "the control plane's own services are not reachable from browsers"
        return reason

    async def checked_upstream(self, upstream: up.Upstream) -> list:
        """The upstream proxy's addresses, each allowed by the policy (its own address is a destination
        like any other: loopback proxies only where the policy lets browsers reach loopback)."""
        try:
            addresses = await self._resolve(upstream.host, upstream.port)
        except Refused as exc:
            raise up.UpstreamError(up.UNREACHABLE, f"the proxy {upstream.describe()}: {exc.reason}") from None
        for ip in addresses:
            reason = await self._refusal(ip, upstream.port)
            if reason:
                raise up.UpstreamError(up.POLICY_REFUSED, f"the proxy {upstream.describe()} is refused: {reason}")
        return addresses

    async def _through(self, upstream: up.Upstream, host: str, port: int, addresses: list):
        """A tunnel to the checked destination through the browser's upstream proxy."""
        try:
            proxy_addresses = await self.checked_upstream(upstream)
            local = any(self.policy.is_local(ip) for ip in proxy_addresses)
            # A proxy on this host would resolve the name again here: it gets the address checked above.
            target = str(addresses[0]) if local or upstream.dns == "local" else host
            return await up.open_tunnel(
                upstream, target, port, address=str(proxy_addresses[0]), timeout=CONNECT_TIMEOUT
            )
        except up.UpstreamError as exc:
            log.info("egress_upstream_failed", upstream=upstream.describe(), code=exc.code, port=port)
            raise Refused(502, f"{exc.code}: {exc.message}") from None

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

"""Leaving through an upstream proxy: a browser's own proxy (http, https or socks5, with credentials),
reached by the egress proxy after its policy check, and by a saved proxy's `test`.

`Upstream.parse` reads a proxy URL (`scheme://user:password@host:port`, user and password
percent-encoded); `open_tunnel` connects to the proxy and asks it for a connection to a destination
(HTTP CONNECT with Proxy-Authorization: Basic, or SOCKS5 with username/password, RFC 1928/1929), and
raises `UpstreamError` with a stable code when it cannot. Credentials are never put in a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

PROTOCOLS = ("http", "https", "socks5")
DEFAULT_PORTS = {"http": 8080, "https": 443, "socks5": 1080}
HANDSHAKE_TIMEOUT = 15.0
HEAD_LIMIT = 64 * 1024

# Codes of a failed attempt to leave through an upstream (documented in the proxies decisions).
AUTH_REJECTED = "proxy.auth_rejected"  # the proxy refused the credentials (407, SOCKS auth failure)
CONNECTION_REFUSED = "proxy.connection_refused"  # nothing accepts connections at the proxy's address
UNREACHABLE = "proxy.unreachable"  # the proxy's name does not resolve, or it did not answer in time
DESTINATION_REFUSED = "proxy.destination_refused"  # the proxy would not connect to the destination
PROTOCOL_ERROR = "proxy.protocol_error"  # the proxy did not speak the protocol it was named with
POLICY_REFUSED = "proxy.policy_refused"  # the proxy's own address is refused by the egress policy


class UpstreamError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Upstream:
    protocol: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    # "proxy": the proxy resolves destination names; "local": it is given the address checked here.
    dns: str = "proxy"

    @classmethod
    def parse(cls, url: str) -> Upstream:
        """Raises ValueError (without the URL's credentials in the message) when `url` is not a proxy URL."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in PROTOCOLS:
            raise ValueError(f"unsupported proxy protocol {scheme or '(none)'}")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("the proxy port is not a number from 1 to 65535") from None
        host = parts.hostname or ""
        if not host or not 0 < port < 65536:
            raise ValueError("a proxy URL needs a host and a port from 1 to 65535")
        dns = "local" if "dns=local" in parts.query else "proxy"
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(scheme, host, port, username or None, password, dns)

    def url(self) -> str:
        """The URL `parse` reads back (credentials included: keep it out of logs)."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{auth}{host}:{self.port}" + ("?dns=local" if self.dns == "local" else "")

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"

    def basic_auth(self) -> bytes:
        if self.username is None:
            return b""
        token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return f"Proxy-Authorization: Basic {token}\r\n".encode()


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def connect(upstream: Upstream, address: str | None = None, timeout: float = 10.0):
    """A connection to the proxy itself (at `address` when the caller checked one; TLS for https)."""
    tls = ssl.create_default_context() if upstream.protocol == "https" else None
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                address or upstream.host,
                upstream.port,
                ssl=tls,
                server_hostname=upstream.host if tls else None,
                limit=HEAD_LIMIT,
            ),
            timeout,
        )
    except ConnectionRefusedError:
        raise UpstreamError(
            CONNECTION_REFUSED, f"the proxy {upstream.describe()} refused the connection (nothing listens there)"
        ) from None
    except TimeoutError:
        raise UpstreamError(
            UNREACHABLE, f"the proxy {upstream.describe()} did not answer within {timeout:g}s"
        ) from None
    except ssl.SSLError as exc:
        raise UpstreamError(PROTOCOL_ERROR, f"TLS with the proxy {upstream.describe()} failed: {exc.reason}") from None
    except OSError as exc:
        raise UpstreamError(
            UNREACHABLE, f"the proxy {upstream.describe()} is unreachable: {exc.strerror or exc}"
        ) from None


async def handshake(upstream: Upstream, reader, writer, host: str, port: int) -> None:
    """Ask the connected proxy for a tunnel to host:port; raises UpstreamError."""
    try:
        await asyncio.wait_for(_handshake(upstream, reader, writer, host, port), HANDSHAKE_TIMEOUT)
    except TimeoutError:
        raise UpstreamError(UNREACHABLE, f"the proxy {upstream.describe()} did not complete its handshake") from None
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        raise UpstreamError(
            PROTOCOL_ERROR, f"the proxy {upstream.describe()} closed the connection during its handshake"
        ) from None


async def _handshake(upstream: Upstream, reader, writer, host: str, port: int) -> None:
    if upstream.protocol == "socks5":
        await _socks5(upstream, reader, writer, host, port)
        return
    target = _authority(host, port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + upstream.basic_auth() + b"\r\n")
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise UpstreamError(PROTOCOL_ERROR, f"the proxy {upstream.describe()} sent an oversized answer") from None
    status = _status(head)
    if status is None:
        raise UpstreamError(PROTOCOL_ERROR, f"the proxy {upstream.describe()} did not answer as an HTTP proxy")
    if status == 407:
        raise UpstreamError(AUTH_REJECTED, _auth_message(upstream, "407 Proxy Authentication Required"))
    if not 200 <= status < 300:
        raise UpstreamError(
            DESTINATION_REFUSED, f"the proxy {upstream.describe()} refused the tunnel to {target} (HTTP {status})"
        )


def _status(head: bytes) -> int | None:
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def _auth_message(upstream: Upstream, answer: str) -> str:
    given = "the credentials given" if upstream.username is not None else "no credentials (it needs some)"
    return f"the proxy {upstream.describe()} refused {given}: {answer}"


_SOCKS_REPLIES = {
    1: "general failure",
    2: "connection not allowed by its rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


async def _socks5(upstream: Upstream, reader, writer, host: str, port: int) -> None:
    methods = b"\x00\x02" if upstream.username is not None else b"\x00"
    writer.write(b"\x05" + bytes([len(methods)]) + methods)
    await writer.drain()
    version, method = await reader.readexactly(2)
    if version != 5:
        raise UpstreamError(PROTOCOL_ERROR, f"the proxy {upstream.describe()} did not answer as a SOCKS5 proxy")
    if method == 0xFF:
        raise UpstreamError(AUTH_REJECTED, _auth_message(upstream, "no acceptable authentication method"))
    if method == 2:
        if upstream.username is None:
            raise UpstreamError(AUTH_REJECTED, _auth_message(upstream, "it asks for a username and password"))
        user, password = upstream.username.encode()[:255], (upstream.password or "").encode()[:255]
        writer.write(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        await writer.drain()
        _, status = await reader.readexactly(2)
        if status != 0:
            raise UpstreamError(AUTH_REJECTED, _auth_message(upstream, "username/password authentication failed"))
    elif method != 0:
        raise UpstreamError(PROTOCOL_ERROR, f"the proxy {upstream.describe()} chose an unknown method {method}")
    try:
        ip = ipaddress.ip_address(host)
        address = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        name = host.encode("idna")[:255]
        address = b"\x03" + bytes([len(name)]) + name
    writer.write(b"\x05\x01\x00" + address + port.to_bytes(2, "big"))
    await writer.drain()
    version, reply, _, kind = await reader.readexactly(4)
    if version != 5:
        raise UpstreamError(PROTOCOL_ERROR, f"the proxy {upstream.describe()} did not answer as a SOCKS5 proxy")
    if reply != 0:
        why = _SOCKS_REPLIES.get(reply, f"reply {reply}")
        raise UpstreamError(
            DESTINATION_REFUSED, f"the proxy {upstream.describe()} could not connect to {_authority(host, port)}: {why}"
        )
    length = {1: 4, 4: 16}.get(kind)
    if length is None:
        length = (await reader.readexactly(1))[0]
    await reader.readexactly(length + 2)


async def open_tunnel(upstream: Upstream, host: str, port: int, address: str | None = None, timeout: float = 10.0):
    """(reader, writer) of a tunnel to host:port through the proxy; raises UpstreamError."""
    reader, writer = await connect(upstream, address, timeout)
    try:
        await handshake(upstream, reader, writer, host, port)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise
    return reader, writer

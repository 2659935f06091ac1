"""Saved proxies and a browser's own proxy: what is kept (the password sealed with the server's
SecretBox, never returned, never logged), how it is checked, and the upstream URL a launch gets.

A browser's proxy setting is kept in its `launch_options["proxy"]`, in one of two stored forms:
`{"id": <saved proxy id>}`, or an inline connection `{"type": "custom", "protocol", "host", "port",
"username", "passwordSealed", "dnsResolution", "udpMode"}` (the password sealed by `prepare_setting`).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.ai.secrets import SecretBox
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.driver import DriverError
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.egress import upstream as up
from app.proxies.models import SavedProxy

PROTOCOLS = up.PROTOCOLS
UNREADABLE = "The stored password was sealed under another server key (BCTRL_SECRET_KEY changed); set it again"


def not_found(proxy_id: object) -> NotFound:
    return NotFound("Proxy not found", code="proxy.not_found", details={"proxyId": str(proxy_id)})


def _box(ctx: AppContext) -> SecretBox:
    return SecretBox(ctx.signing_key)


def _invalid(code: str, field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}",
        code=code,
        details={"fields": [{"field": field, "in": "body", "message": message, "type": "invalid"}]},
    )


@dataclass
class Connection:
    """Where a proxy is and how to sign in to it (the password in plain, in memory only)."""

    protocol: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    dns_resolution: str | None = None
    udp_mode: str | None = None

    def upstream(self) -> up.Upstream:
        return up.Upstream(
            self.protocol, self.host, self.port, self.username, self.password, self.dns_resolution or "proxy"
        )


def _protocol(value: Any, field: str) -> str:
    word = str(value or "").lower()
    if word not in PROTOCOLS:
        why = f"{value!r} is not offered; this server supports {', '.join(PROTOCOLS)}"
        raise _invalid("proxy.protocol_unsupported", field, why)
    return word


# What a proxy's host may be: a name or an IPv4 address (IPv6 literals are not offered: use a name).
HOST_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
PORT_PATTERN = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
USERINFO_PATTERN = r"[A-Za-z0-9._~%!$&'()*+,;=-]+"
URL_PATTERN = (
    rf"^(?:http|https|socks5)://(?:{USERINFO_PATTERN}(?::{USERINFO_PATTERN}|:)?@)?{HOST_PATTERN}(?::{PORT_PATTERN})?/?$"
)


def _host(value: Any, field: str = "host") -> str:
    host = str(value or "").strip()
    if not re.fullmatch(HOST_PATTERN, host):
        raise _invalid("proxy.url_invalid", field, "a proxy needs a host name or an IPv4 address")
    return host


def _port(value: Any, field: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _invalid("proxy.url_invalid", field, "a port from 1 to 65535")
    return value


def _check_modes(dns: Any, udp: Any) -> None:
    if dns not in (None, "local", "proxy"):
        raise _invalid("request.invalid", "dnsResolution", "one of local, proxy")
    if udp not in (None, "disabled", "auto", "required"):
        raise _invalid("request.invalid", "udpMode", "one of disabled, auto, required")
    if udp == "required":
        why = "UDP does not go through proxies here (WebRTC keeps to the proxied TCP route); use disabled or auto"
        raise _invalid("proxy.udp_protocol_unsupported", "udpMode", why)


def connection_of(
    *,
    url: str | None = None,
    protocol: Any = None,
    host: Any = None,
    port: Any = None,
    username: str | None = None,
    password: str | None = None,
    dns_resolution: str | None = None,
    udp_mode: str | None = None,
) -> Connection:
    """A connection from a URL (`scheme://user:password@host:port`) or from its parts; the parts given
    beside a URL override it. Raises 400 with the proxy's documented codes."""
    _check_modes(dns_resolution, udp_mode)
    if url is not None:
        if not isinstance(url, str) or len(url) > 2048 or not url.isprintable() or "://" not in url:
            raise _invalid("proxy.url_invalid", "url", "a proxy URL such as http://user:password@host:port")
        _protocol(url.split("://", 1)[0], "url")
        if not re.fullmatch(URL_PATTERN, url):
            raise _invalid("proxy.url_invalid", "url", "a proxy URL such as http://user:password@host:port")
        parts = urlsplit(url)
        protocol = protocol or parts.scheme
        host = host or parts.hostname
        port = parts.port if port is None else port
        if username is None and parts.username:
            username = unquote(parts.username)
        if password is None and parts.password is not None:
            password = unquote(parts.password)
    if host is None:
        raise _invalid("proxy.connection_required", "url", "give a url, or a host (with protocol and port)")
    protocol = _protocol(protocol or "http", "protocol")
    return Connection(
        protocol=protocol,
        host=_host(host),
        port=_port(up.DEFAULT_PORTS[protocol] if port is None else port),
        username=username or None,
        password=password if password else None,
        dns_resolution=dns_resolution,
        udp_mode=udp_mode,
    )


# --- saved proxies ---


@dataclass
class ProxySpec:
    name: str | None
    connection: Connection


async def create(ctx: AppContext, p: Principal, spec: ProxySpec) -> SavedProxy:
    now, new_id = clock.now(), ids.new_id()
    c = spec.connection
    row = SavedProxy(
        id=new_id,
        account_id=p.account_id,
        name=spec.name or f"{c.protocol}-{c.host[:160]}-{new_id.hex[-8:]}",
        protocol=c.protocol,
        host=c.host,
        port=c.port,
        username=c.username,
        password_encrypted=_box(ctx).seal(c.password) if c.password else None,
        dns_resolution=c.dns_resolution,
        udp_mode=c.udp_mode,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            await _refuse_taken(s, p.account_id, row.name, None)
            s.add(row)
    except IntegrityError:
        raise _name_conflict(row.name) from None
    return row


def _name_conflict(name: str) -> Conflict:
    return Conflict(f"A proxy named {name!r} exists", code="proxy.name_conflict", details={"name": name})


async def _refuse_taken(s, account_id: uuid.UUID, name: str, other_than: uuid.UUID | None) -> None:
    stmt = select(func.count()).select_from(SavedProxy).where(SavedProxy.account_id == account_id)
    stmt = stmt.where(SavedProxy.name == name)
    if other_than is not None:
        stmt = stmt.where(SavedProxy.id != other_than)
    if await s.scalar(stmt):
        raise _name_conflict(name)


async def get(ctx: AppContext, p: Principal, proxy_id: str) -> SavedProxy:
    row = await get_owned(ctx.db, SavedProxy, proxy_id, p.account_id)
    if row is None:
        raise not_found(proxy_id)
    return row


async def list_proxies(
    ctx: AppContext, p: Principal, page: PageParams, *, newest_first: bool
) -> tuple[list[SavedProxy], str | None]:
    stmt = select(SavedProxy).where(SavedProxy.account_id == p.account_id)
    return await fetch_by_id(ctx.db, stmt, SavedProxy.id, page, newest_first=newest_first)


def current_connection(ctx: AppContext, row: SavedProxy) -> Connection:
    password = _box(ctx).open(row.password_encrypted) if row.password_encrypted else None
    return Connection(row.protocol, row.host, row.port, row.username, password, row.dns_resolution, row.udp_mode)


async def update_row(
    ctx: AppContext, row: SavedProxy, name: str | None, connection: Connection | None, password_given: bool
) -> SavedProxy:
    """A new name and/or connection (a connection made with the row's current values for what the
    request left out); `password_given`: the password is set (None removes it)."""
    changes: dict[str, Any] = {"updated_at": clock.now()}
    if name is not None:
        changes["name"] = name
    if connection is not None:
        changes.update(
            protocol=connection.protocol,
            host=connection.host,
            port=connection.port,
            username=connection.username,
            dns_resolution=connection.dns_resolution,
            udp_mode=connection.udp_mode,
        )
        if password_given:
            changes["password_encrypted"] = _box(ctx).seal(connection.password) if connection.password else None
    try:
        async with ctx.db.transaction() as s:
            if name is not None:
                await _refuse_taken(s, row.account_id, name, row.id)
            await s.execute(sa_update(SavedProxy).where(SavedProxy.id == row.id).values(**changes))
            updated = await s.get(SavedProxy, row.id, populate_existing=True)
    except IntegrityError:
        raise _name_conflict(name or row.name) from None
    if updated is None:
        raise not_found(row.id)
    return updated


async def delete_row(ctx: AppContext, row: SavedProxy) -> uuid.UUID:
    """Browsers naming it keep their setting; their next start fails with `proxy.not_found`."""
    async with ctx.db.transaction() as s:
        found = await s.get(SavedProxy, row.id)
        if found is not None:
            await s.delete(found)
    return row.id


# --- test ---


@dataclass
class TestResult:
    ok: bool
    exit_ip: str | None = None
    http_status: int | None = None
    latency_seconds: float | None = None
    error: str | None = None
    code: str | None = None
    checked_at: datetime | None = None


async def check(ctx: AppContext, upstream: up.Upstream) -> list:
    """The proxy's addresses, allowed by the browsers' egress policy (else UpstreamError)."""
    checked = getattr(ctx.driver, "proxy_checked", None)
    if checked is None:
        raise up.UpstreamError(up.POLICY_REFUSED, "the egress proxy is not running on this server")
    return await checked(upstream)


async def test_row(ctx: AppContext, row: SavedProxy) -> TestResult:
    """Fetch the test URL (BCTRL_PROXY_TEST_URL) through the proxy: what its far side answers is the
    address the proxy leaves from."""
    if row.password_encrypted and _box(ctx).open(row.password_encrypted) is None:
        return TestResult(ok=False, error=UNREADABLE, code="proxy.password_unreadable", checked_at=clock.now())
    return await probe(ctx, current_connection(ctx, row).upstream(), ctx.settings.proxy_test_url)


async def probe(ctx: AppContext, upstream: up.Upstream, test_url: str) -> TestResult:
    started = time.monotonic()
    target = urlsplit(test_url)
    secure = target.scheme == "https"
    port = target.port or (443 if secure else 80)
    try:
        addresses = await check(ctx, upstream)
        reader, writer = await up.open_tunnel(upstream, target.hostname or "", port, address=str(addresses[0]))
    except up.UpstreamError as exc:
        return TestResult(ok=False, error=exc.message, code=exc.code, checked_at=clock.now())
    try:
        status, body = await _get(reader, writer, target, secure)
    except (OSError, TimeoutError, ValueError, EOFError) as exc:
        message = f"the test URL did not answer through the proxy: {type(exc).__name__}"
        return TestResult(ok=False, error=message, code=up.DESTINATION_REFUSED, checked_at=clock.now())
    finally:
        writer.close()
    latency = round(time.monotonic() - started, 3)
    exit_ip = _exit_ip(body)
    ok = 200 <= status < 300 and exit_ip is not None
    return TestResult(
        ok=ok,
        exit_ip=exit_ip,
        http_status=status,
        latency_seconds=latency,
        error=None if ok else f"the test URL answered HTTP {status} without an address",
        code=None if ok else up.DESTINATION_REFUSED,
        checked_at=clock.now(),
    )


async def _get(reader, writer, target, secure: bool) -> tuple[int, bytes]:
    import asyncio
    import ssl

    if secure:
        await writer.start_tls(ssl.create_default_context(), server_hostname=target.hostname)
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {target.netloc}\r\nAccept: application/json, text/plain\r\n"
        "User-Agent: bctrl-proxy-test\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(64 * 1024), 10)
    while len(raw) < 64 * 1024:
        more = await asyncio.wait_for(reader.read(64 * 1024), 10)
        if not more:
            break
        raw += more
    head, _, body = raw.partition(b"\r\n\r\n")
    status = up._status(head + b"\r\n")
    if status is None:
        raise ValueError("not HTTP")
    return status, body


def _exit_ip(body: bytes) -> str | None:
    import ipaddress
    import json

    text = body.decode(errors="replace").strip()
    try:
        value = json.loads(text)
        text = str(value.get("ip") or value.get("origin") or "") if isinstance(value, dict) else str(value)
    except ValueError:
        pass
    candidate = text.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


# --- a browser's proxy setting ---


def connection_of_setting(setting: dict) -> Connection:
    """`connection_of` for a browser's inline proxy setting in wire words (dnsResolution, udpMode)."""
    return connection_of(
        url=setting.get("url"),
        protocol=setting.get("protocol"),
        host=setting.get("host"),
        port=setting.get("port"),
        username=setting.get("username"),
        password=setting.get("password"),
        dns_resolution=setting.get("dnsResolution"),
        udp_mode=setting.get("udpMode"),
    )


async def prepare_setting(ctx: AppContext, p: Principal, setting: dict) -> dict:
    """What a browser keeps of a validated proxy setting: a saved proxy's id (the caller's own, else 404
    `proxy.not_found`) or the inline connection with its password sealed."""
    if "id" in setting:
        return {"id": str((await get(ctx, p, str(setting["id"]))).id)}
    c = connection_of_setting(setting)
    stored: dict[str, Any] = {"type": "custom", "protocol": c.protocol, "host": c.host, "port": c.port}
    if c.username:
        stored["username"] = c.username
    if c.password:
        stored["passwordSealed"] = _box(ctx).seal(c.password)
    if c.dns_resolution:
        stored["dnsResolution"] = c.dns_resolution
    if c.udp_mode:
        stored["udpMode"] = c.udp_mode
    return stored


def setting_out(stored: dict | None) -> dict | None:
    """The stored setting as a browser shows it: never the password."""
    if not stored:
        return None
    if "id" in stored:
        return {"id": stored["id"]}
    shown = {
        k: stored[k]
        for k in ("type", "protocol", "host", "port", "username", "dnsResolution", "udpMode")
        if k in stored
    }
    shown["hasPassword"] = "passwordSealed" in stored
    return shown


async def launch_upstream(ctx: AppContext, account_id: uuid.UUID, stored: dict) -> str:
    """The upstream URL (credentials included) a browser starts with; DriverError when it cannot be used:
    a saved proxy deleted meanwhile (`proxy.not_found`), an unreadable password, or a proxy whose
    address the policy refuses or that accepts no connection (`runtime.proxy_unavailable`)."""
    box = _box(ctx)
    if "id" in stored:
        async with ctx.db.read() as s:
            row = await s.get(SavedProxy, ids.parse_uuid(str(stored["id"])))
        if row is None or row.account_id != account_id:
            raise DriverError(f"The browser's saved proxy {stored['id']} was deleted", code="proxy.not_found")
        if row.password_encrypted and box.open(row.password_encrypted) is None:
            raise DriverError(UNREADABLE, code="runtime.proxy_unavailable")
        upstream = current_connection(ctx, row).upstream()
    else:
        password = box.open(stored["passwordSealed"]) if stored.get("passwordSealed") else None
        if stored.get("passwordSealed") and password is None:
            raise DriverError(UNREADABLE, code="runtime.proxy_unavailable")
        upstream = up.Upstream(
            stored["protocol"],
            stored["host"],
            int(stored["port"]),
            stored.get("username"),
            password,
            stored.get("dnsResolution") or "proxy",
        )
    try:
        # Said at start rather than as failing page loads: the proxy is allowed and accepts connections.
        addresses = await check(ctx, upstream)
        _, writer = await up.connect(upstream, str(addresses[0]), timeout=5)
        writer.close()
    except up.UpstreamError as exc:
        raise DriverError(
            f"The browser's proxy cannot be used: {exc.message} ({exc.code})", code="runtime.proxy_unavailable"
        ) from None
    return upstream.url()

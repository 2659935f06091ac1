"""The egress proxy's entrances: a browser's traffic leaves through its own upstream proxy (HTTP CONNECT
or SOCKS5, with credentials) after the same policy check, and the upstream's address is checked too."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.egress import upstream as up
from app.egress.policy import EgressPolicy
from app.egress.proxy import EgressProxy
from tests.proxy_helpers import EchoServer, TestProxy


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


async def _through(entrance: str, target: str, plain: bool = False) -> tuple[int, bytes]:
    """GET http://target/ip via the entrance (a CONNECT tunnel, or a plain-HTTP absolute-form request)."""
    host, port = entrance.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        if plain:
            writer.write(f"GET http://{target}/ip HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        else:
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head.split(b" ")[1])
            if status != 200:
                return status, await reader.read()
            writer.write(f"GET /ip HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture
async def egress():
    proxy = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.mark.parametrize("kind", ["http", "socks5"])
@pytest.mark.parametrize("plain", [False, True])
async def test_traffic_leaves_through_the_upstream_with_its_credentials(egress, echo, kind, plain):
    upstream = TestProxy(kind, username="alice", password="s3cr:t@")
    try:
        entrance = await egress.entrance(upstream.url_with("alice", "s3cr%3At%40"))
        target = echo.url.split("/")[2]
        status, body = await _through(entrance, target, plain)
        assert status == 200, body
        # The echo server saw the upstream's own address: the traffic went through it.
        assert json.loads(body) == {"ip": "127.0.0.2"}
        assert upstream.seen == [target] and upstream.refused == []
    finally:
        upstream.close()


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_a_wrong_password_is_a_clear_refusal(egress, echo, kind):
    upstream = TestProxy(kind, username="alice", password="right")
    try:
        entrance = await egress.entrance(upstream.url_with("alice", "wrong"))
        status, body = await _through(entrance, echo.url.split("/")[2])
        assert status == 502 and up.AUTH_REJECTED.encode() in body
        assert b"wrong" not in body  # the credentials are never echoed
        assert upstream.refused == ["alice"] and upstream.seen == []
    finally:
        upstream.close()


async def test_the_policy_still_applies_to_the_destination_and_to_the_upstream(egress, echo):
    upstream = TestProxy("http")
    try:
        entrance = await egress.entrance(upstream.url)
        # The control plane (here: the egress proxy's own port) stays out of reach, upstream or not.
        status, body = await _through(entrance, f"127.0.0.1:{egress.port}")
        assert status == 403 and upstream.seen == []
        # A browser may not use another browser's entrance.
        other = await egress.entrance(upstream.url)
        status, _ = await _through(entrance, other.rsplit("/", 1)[1])
        assert status == 403
    finally:
        upstream.close()
    public = EgressProxy(EgressPolicy("public"), "127.0.0.1", 0)
    await public.start()
    try:
        # With BCTRL_BROWSER_EGRESS=public, a proxy on loopback is refused like any loopback destination.
        entrance = await public.entrance("http://127.0.0.1:9")
        status, body = await _through(entrance, "93.184.216.34:80")
        assert status == 502 and up.POLICY_REFUSED.encode() in body
    finally:
        await public.close()


async def test_an_upstream_that_refuses_connections_and_a_released_entrance(egress, echo):
    upstream = TestProxy("http")
    dead_port = upstream.port
    upstream.close()
    entrance = await egress.entrance(f"http://127.0.0.1:{dead_port}")
    status, body = await _through(entrance, echo.url.split("/")[2])
    assert status == 502 and up.CONNECTION_REFUSED.encode() in body
    await egress.release(entrance)
    with pytest.raises(OSError):
        await _through(entrance, echo.url.split("/")[2])


def test_upstream_urls_round_trip_and_hide_credentials():
    parsed = up.Upstream.parse("socks5://us%40er:p%3Ass@proxy.example:1080?dns=local")
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.dns) == (
        "us@er",
        "p:ss",
        "proxy.example",
        1080,
        "local",
    )
    assert up.Upstream.parse(parsed.url()) == parsed
    assert "p:ss" not in parsed.describe()
    with pytest.raises(ValueError, match="unsupported proxy protocol socks4"):
        up.Upstream.parse("socks4://host:1")

"""Security: after a restart, the ports of the earlier process's entrances are held and refuse traffic
(an adopted browser never leaves straight from this host, nor through another browser's entrance)."""

from __future__ import annotations

import asyncio

import pytest

from app.egress.policy import EgressPolicy
from app.egress.proxy import EgressProxy
from tests.proxy_helpers import EchoServer, TestProxy


async def _connect_status(url: str, target: str) -> int:
    host, port = url.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return int(head.split(b" ")[1])
    finally:
        writer.close()


async def test_a_former_entrance_is_held_and_refuses(tmp_path):
    echo, upstream = EchoServer(), TestProxy("http", username="alice", password="pw")
    file = tmp_path / "egress.entrances"
    first = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0, file)
    await first.start()
    try:
        entrance = await first.entrance(upstream.url_with("alice", "pw"))
        target = echo.url.split("/")[2]
        assert await _connect_status(entrance, target) == 200
        port = int(entrance.rsplit(":", 1)[1])
        assert file.read_text().split() == [str(port)] and "pw" not in file.read_text()
    finally:
        await first.close()
        await asyncio.sleep(0.1)
    second = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0, file)
    await second.start()
    try:
        seen = len(upstream.seen)
        # The supervisor asks to serve an adopted browser's proxy URL: for an entrance, never as a plain proxy.
        await second.also_serve(entrance)
        assert await _connect_status(entrance, target) == 502
        assert len(upstream.seen) == seen
        # Nor as a destination of other browsers.
        assert second.policy.refusal(__import__("ipaddress").ip_address("127.0.0.1"), port)
        # The browser stopped: the port is let go.
        await second.release(entrance)
        assert file.read_text().split() == []
    finally:
        await second.close()
        echo.close()
        upstream.close()


async def test_an_adopted_browsers_entrance_is_opened_again_with_its_upstream(tmp_path):
    echo, upstream = EchoServer(), TestProxy("http", username="alice", password="pw")
    file = tmp_path / "egress.entrances"
    first = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0, file)
    await first.start()
    entrance = await first.entrance(upstream.url_with("alice", "pw"))
    await first.close()
    await asyncio.sleep(0.1)
    second = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0, file)
    await second.start()
    try:
        target = echo.url.split("/")[2]
        assert await _connect_status(entrance, target) == 502
        assert await second.entrance(upstream.url_with("alice", "pw"), restore=entrance) == entrance
        seen = len(upstream.seen)
        assert await _connect_status(entrance, target) == 200 and len(upstream.seen) == seen + 1
        # Only a held entrance can be restored.
        with pytest.raises(OSError):
            await second.entrance(upstream.url_with("alice", "pw"), restore=f"http://127.0.0.1:{second.port}")
    finally:
        await second.close()
        echo.close()
        upstream.close()

"""Security: a browser's debugging port on this host is refused by the egress proxy even when the driver
does not report it (another server's browser, an adopted one, a container on host networking), while
other loopback services stay reachable in `private` mode."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app.egress.policy import EgressPolicy
from app.egress.proxy import EgressProxy
from tests.proxy_helpers import EchoServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


async def _connect(proxy: EgressProxy, port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return int(head.split(b" ")[1])
    finally:
        writer.close()


@pytest.fixture
def foreign_chromium(tmp_path):
    """A Chromium with a debugging port that no driver of this process launched."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("no Chromium")
    profile = tmp_path / "profile"
    args = [CHROMIUM, "--headless=new", "--no-sandbox", f"--user-data-dir={profile}"]
    args += ["--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    active = Path(profile) / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (active.exists() and active.read_text().strip()):
        assert time.monotonic() < deadline, "Chromium did not open its debugging port"
        time.sleep(0.1)
    yield int(active.read_text().split()[0])
    proc.terminate()
    proc.wait(timeout=10)


async def test_an_unreported_debugging_port_is_refused(foreign_chromium):
    echo = EchoServer()
    proxy = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0)
    await proxy.start()
    try:
        assert await _connect(proxy, foreign_chromium) == 403
        assert await _connect(proxy, int(echo.url.rsplit(":", 1)[1].split("/")[0])) == 200
    finally:
        await proxy.close()
        echo.close()

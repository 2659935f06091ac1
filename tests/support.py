"""Helpers shared by the tests: process-table checks, polling, a page server on loopback."""

from __future__ import annotations

import asyncio
import http.server
import os
import struct
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path


def chromium_pids(fragment: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains `fragment`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if fragment.encode() in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z":
            pids.append(int(entry.name))
    return pids


def browser_root(data_dir: Path) -> Path:
    """Where a server with this data directory keeps its local browsers (profiles, downloads, files)."""
    from app.core.config import Settings

    return Settings(data_dir=data_dir).resolved_browser_root


def profile_fragment(data_dir: Path, runtime_id: str | None = None) -> str:
    base = f"--user-data-dir={browser_root(data_dir) / 'profiles'}"
    return f"{base}/{runtime_id}" if runtime_id else base


async def eventually(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.1):
    """Poll an (async or sync) check until it returns a truthy value; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


class PageServer:
    """Serves a directory of test pages on 127.0.0.1 from a thread."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a, **kw: _QuietHandler(*a, directory=str(root), **kw)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        # /stall/<status>: the status and headers at once, then a body that never finishes (5 s).
        if self.path.startswith("/stall/"):
            self.send_response(int(self.path.split("?")[0].rsplit("/", 1)[1]))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"partial")
            self.wfile.flush()
            time.sleep(5)
            return
        super().do_GET()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCTRL_")}
    env.update(values)
    return env


@asynccontextmanager
async def started_runtime(api, **body):
    """A flat runtime started for the test and stopped at the end, whatever happens."""
    created = await api.post("/v1/runtimes", json={"start": True, **body})
    assert created.status_code == 201, created.text
    runtime = created.json()
    try:
        yield runtime
    finally:
        await api.post(f"/v1/runtimes/{runtime['id']}/stop")


def error_of(response, status: int) -> dict:
    """The current generation's error object of a response that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()["error"]


def jpeg_size(data: bytes) -> tuple[int, int]:
    """A JPEG's (width, height), from its frame header."""
    assert data[:2] == b"\xff\xd8"
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no frame header in the JPEG")


def code_of(raised) -> str:
    """The error code of an SDK error caught by `pytest.raises` (its `ExceptionInfo`)."""
    return raised.value.body["error"]["code"]

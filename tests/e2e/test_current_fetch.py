"""Fetch through the official 0.3 client, unchanged, against a real server process and real Chromium:
the request carries the browser's cookies (set by Playwright over the CDP URL), a response's cookie
lands in the browser, a timeout, a scheme that is not HTTP, the body cap, and a streamed large body."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique
from tests.proxy_helpers import TestProxy

MB = 1024 * 1024


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the fetch that timed out went away
            pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/echo":
            seen = {
                "cookie": self.headers.get("Cookie"),
                "agent": self.headers.get("User-Agent"),
                "peer": self.client_address[0],
            }
            self._send(
                200,
                json.dumps(seen).encode(),
                {"Content-Type": "application/json", "Set-Cookie": "from_server=yes; Path=/; Max-Age=3600; HttpOnly"},
            )
        elif path == "/hop":
            self._send(302, b"", {"Location": "/echo", "Set-Cookie": "hop=1; Path=/"})
        elif path == "/slow":
            time.sleep(3)
            self._send(200, b"late")
        elif path == "/big":
            size = int(query.split("=", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"x" * MB
            try:
                while size > 0:
                    self.wfile.write(block[: min(size, MB)])
                    size -= MB
            except (BrokenPipeError, ConnectionResetError):  # a truncated fetch stops reading
                pass
        else:
            self._send(404, b"no")


@pytest.fixture(scope="module")
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def until_free(call, timeout: float = 20.0):
    """Call again while the browser is still held by the CDP client that just disconnected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ConflictError as exc:
            if time.monotonic() > deadline or exc.body["error"]["code"] != "browser.control_held":
                raise
            time.sleep(0.25)


def with_playwright(cdp_url: str, act):
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        try:
            return act(browser.contexts[0])
        finally:
            browser.close()


@pytest.fixture
def running(client, browsers):
    created = client.browsers.create(name=unique("fetch"), wait=30)
    browsers(created.id)
    return created


def test_fetch_carries_the_browsers_cookies_and_stores_the_answers(client, running, echo):
    cdp_url = running.current_run.connections.cdp_url
    agent = with_playwright(
        cdp_url,
        lambda ctx: (
            ctx.add_cookies([{"name": "sid", "value": "abc123", "url": f"{echo}/"}]),
            (ctx.pages[0] if ctx.pages else ctx.new_page()).evaluate("navigator.userAgent"),
        )[1],
    )

    got = until_free(lambda: client.browsers.fetch(running.id, url=f"{echo}/hop?token=secret"))
    assert got.object == "fetch.result" and got.status == "succeeded" and got.event_id
    data = got.data
    assert data.status == 200 and data.redirected and data.url == f"{echo}/echo"
    assert data.headers["content-type"] == "application/json" and "set-cookie" not in data.headers
    seen = json.loads(base64.b64decode(data.body))
    # The browser's cookie, and the one the redirect set on the way.
    assert "sid=abc123" in seen["cookie"] and "hop=1" in seen["cookie"]
    assert seen["agent"] == agent
    assert data.body_bytes == len(base64.b64decode(data.body)) and not data.truncated

    cookies = with_playwright(cdp_url, lambda ctx: {c["name"]: c for c in ctx.cookies(f"{echo}/")})
    assert cookies["from_server"]["value"] == "yes" and cookies["from_server"]["httpOnly"] is True

    event = client.events.get(got.event_id)
    assert event.type == "fetch.completed" and event.category == "network" and event.channel == "api"
    assert event.data["url"] == f"{echo}/echo" and event.data["status"] == 200 and "token" not in str(event.data)
    assert event.data["bodyBytes"] == data.body_bytes and "body" not in event.data


def test_fetch_refusals_timeout_and_body_cap(client, running, echo):
    bid = running.id
    for url in ("file:///etc/passwd", "javascript:alert(1)", "ftp://127.0.0.1/x", "/relative"):
        with pytest.raises(BadRequestError) as bad:
            client.browsers.fetch(bid, url=url)
        assert code_of(bad) == "request.invalid", url
    with pytest.raises(BadRequestError):
        client.browsers.fetch(bid, url=f"{echo}/echo", headers={"Host": "elsewhere"})

    started = time.monotonic()
    with pytest.raises(ApiError) as slow:
        client.browsers.fetch(bid, url=f"{echo}/slow", timeout_ms=500)
    assert slow.value.status_code == 504 and code_of(slow) == "browser.fetch_timeout"
    assert time.monotonic() - started < 2.5
    failed = client.events.list(run=running.current_run.id, type="fetch.failed").data
    assert [(e.data["code"], e.data["url"]) for e in failed] == [("browser.fetch_timeout", f"{echo}/slow")]

    capped = client.browsers.fetch(bid, url=f"{echo}/big?n={3 * MB}", max_bytes=MB)
    assert capped.data.truncated and capped.data.body_bytes == MB and len(base64.b64decode(capped.data.body)) == MB
    with pytest.raises(BadRequestError):
        client.browsers.fetch(bid, url=f"{echo}/echo", max_bytes=26 * MB)

    # A port the egress policy refuses (the server's own API port): the upstream failure code.
    with pytest.raises(ApiError) as refused:
        client.browsers.fetch(bid, url=client._client_wrapper.get_base_url().rstrip("/") + "/v1/health")
    assert refused.value.status_code == 502 and code_of(refused) == "browser.fetch_failed"

    def while_attached(ctx):
        with pytest.raises(ConflictError) as held:
            client.browsers.fetch(bid, url=f"{echo}/echo")
        return held

    held = with_playwright(running.current_run.connections.cdp_url, while_attached)
    assert code_of(held) == "browser.control_held" and "CDP client" in held.value.body["error"]["message"]

    client.browsers.stop(bid, wait=30)
    with pytest.raises(ConflictError) as stopped:
        client.browsers.fetch(bid, url=f"{echo}/echo")
    assert code_of(stopped) == "browser.not_running"


def test_fetch_stream_streams_a_body_beyond_the_cap(live, client, running, echo):
    size = 40 * MB  # beyond fetch's largest maxBytes (25 MiB)
    total = 0
    for chunk in client.browsers.fetch_stream(running.id, url=f"{echo}/big?n={size}"):
        total += len(chunk)
    assert total == size

    with httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}", "BCTRL-Version": "2026-10-03"}
    ) as raw:
        with raw.stream("POST", f"/v1/browsers/{running.id}/fetch/stream", json={"url": f"{echo}/echo"}) as answer:
            assert answer.status_code == 200 and answer.headers["BCTRL-Fetch-Status"] == "200"
            assert json.loads(answer.headers["BCTRL-Fetch-Headers"])["content-type"] == "application/json"
            assert b"".join(answer.iter_bytes())
    with pytest.raises(ApiError) as slow:
        b"".join(client.browsers.fetch_stream(running.id, url=f"{echo}/slow", timeout_ms=500))
    assert slow.value.status_code == 504 and code_of(slow) == "browser.fetch_timeout"


def test_fetch_leaves_through_the_browsers_own_proxy(client, browsers, echo):
    upstream = TestProxy("http")  # connects onward from 127.0.0.2
    try:
        created = client.browsers.create(name=unique("fproxy"), proxy=upstream.url, wait=30)
        browsers(created.id)
        got = client.browsers.fetch(created.id, url=f"{echo}/echo")
        assert json.loads(base64.b64decode(got.data.body))["peer"] == "127.0.0.2"
        assert f"{echo}/echo" in upstream.seen or echo.split("/")[2] in upstream.seen
    finally:
        upstream.close()

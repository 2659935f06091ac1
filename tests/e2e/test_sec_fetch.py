"""Security of fetch: what a caller gives for one origin is not sent to another that it redirects to, and
an answer cannot plant cookies for a site other than its own."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from bctrl._generated.errors import ConflictError

from tests.e2e.test_current_fetch import until_free, with_playwright
from tests.e2e.test_current_sdk import VERSION, unique


class Hop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    other = ""

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/away"):
            self._send(302, b"", {"Location": f"{Hop.other}/echo"})
        elif self.path.startswith("/echo"):
            seen = {"authorization": self.headers.get("Authorization"), "cookie": self.headers.get("Cookie")}
            self._send(200, json.dumps(seen).encode(), {"Content-Type": "application/json"})
        elif self.path.startswith("/html"):
            self._send(200, b"<script>alert(1)</script>", {"Content-Type": "text/html"})
        elif self.path.startswith("/utf"):
            self._send(302, b"", {"Location": "/html?\u00fc"})
        elif self.path.startswith("/plant"):
            self._send(200, b"ok", {"Set-Cookie": "planted=1; Domain=victim.test; Path=/"})
        else:
            self._send(404, b"", {})


@pytest.fixture(scope="module")
def two_origins():
    servers = []
    for host in ("127.0.0.1", "127.0.0.2"):
        server = ThreadingHTTPServer((host, 0), Hop)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    first, second = (f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers)
    Hop.other = second
    yield first, second
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def running(client, browsers):
    created = client.browsers.create(name=unique("secfetch"), wait=30)
    browsers(created.id)
    return created


def test_a_cross_origin_redirect_drops_the_callers_credentials(client, running, two_origins):
    first, _ = two_origins
    headers = {"Authorization": "Bearer caller-secret", "Cookie": "given=caller-cookie"}
    got = until_free(lambda: client.browsers.fetch(running.id, url=f"{first}/away", headers=headers))
    assert got.data.status == 200 and got.data.redirected
    seen = json.loads(base64.b64decode(got.data.body))
    assert seen["authorization"] is None, seen
    assert "caller-cookie" not in (seen["cookie"] or ""), seen


def test_an_answer_plants_no_cookie_for_another_site(client, running, two_origins):
    first, _ = two_origins
    got = until_free(lambda: client.browsers.fetch(running.id, url=f"{first}/plant"))
    assert got.data.status == 200
    cdp_url = running.current_run.connections.cdp_url
    cookies = with_playwright(cdp_url, lambda ctx: ctx.cookies("http://victim.test/"))
    assert cookies == []


def test_a_streamed_answer_is_never_a_page_of_the_api(live, client, running, two_origins):
    first, _ = two_origins
    headers = {"Authorization": f"Bearer {live.api_key}", "BCTRL-Version": VERSION}
    url = f"{live.url}/v1/browsers/{running.id}/fetch/stream"
    got = until_free(lambda: _stream(url, headers, f"{first}/utf"))
    assert got.status_code == 200, got.text
    assert got.headers["x-content-type-options"] == "nosniff" and "sandbox" in got.headers["content-security-policy"]
    assert got.headers["bctrl-fetch-url"].endswith("/html?%C3%BC") and got.text == "<script>alert(1)</script>"


def _stream(url: str, headers: dict, target: str) -> httpx.Response:
    response = httpx.post(url, json={"url": target}, headers=headers, timeout=60)
    if response.status_code == 409:
        raise ConflictError(body=response.json())
    return response

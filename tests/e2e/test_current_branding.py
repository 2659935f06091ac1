"""The account's branding on the pages its viewers see, end to end: set through the official 0.3 client
unchanged (`client.account.update`) against a real server process, then shown in headless Chromium with
the pages' own Content-Security-Policy in force: the view page's header carries the product name and the
logo (served over https from loopback; its origin, and no other, is allowed for images), its buttons
take the accent colour, the "powered by" line shows; a change applies to an open view page at its next
poll; the live and replay pages carry the same branding, and inside the view page's frame they leave
the name and logo to the view page. The views' answers carry the same resolved branding."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import struct
import threading
import zlib
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bctrl._generated.types import ResolvedBranding, ViewComponentsInput, ViewScopeRuntimeInput, ViewScopeSpaceInput
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import set_cookie_and_visit, unique
from tests.e2e.test_current_views import SHOTS, frame_of, launch, live_frame, poll

PRODUCT = 'Acme <Control> & "Co"'
ACCENT = "#ff5500"
ACCENT_RGB = "rgb(255, 85, 0)"


def png(width: int, height: int) -> bytes:
    """A small PNG: an orange square with a white bar, enough to see in a screenshot."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            bar = height // 3 <= y < 2 * height // 3 and width // 5 <= x < 4 * width // 5
            row += bytes((255, 255, 255) if bar else (255, 85, 0))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


class LogoServer:
    """An https server on loopback (a self-signed certificate for 127.0.0.1 and localhost) serving
    /logo.png, remembering the Host of every request."""

    def __init__(self, tmp: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "logo test")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        image = png(96, 48)
        hosts = self.hosts = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hosts.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def logo_server(tmp_path):
    server = LogoServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def branded(live):
    """The account's branding is reset in teardown: the e2e server is shared by the session's tests."""
    yield
    with live.client() as raw:
        assert raw.patch("/v1/account", json={"branding": None}).status_code == 200


def style(page_or_frame, selector: str, prop: str) -> str:
    return page_or_frame.evaluate(f"getComputedStyle(document.querySelector({selector!r})).{prop}")


def image_load(page, url: str) -> str:
    """Load `url` as an image in the page: "loaded", or "blocked" (the page's policy refused it)."""
    return page.evaluate(
        """(url) => new Promise((resolve) => {
            let blocked = false;
            document.addEventListener("securitypolicyviolation", (e) => { if (e.blockedURI.startsWith(url.slice(0, 20))) blocked = true; });
            const img = new Image();
            img.onload = () => resolve("loaded");
            img.onerror = () => setTimeout(() => resolve(blocked ? "blocked" : "error"), 200);
            img.src = url;
        })""",
        url,
    )


def test_branding_on_the_view_live_and_replay_pages(live, client, browsers, pages, logo_server, branded):
    logo = f"https://127.0.0.1:{logo_server.port}/logo.png"
    account = client.account.update(
        branding={"productName": PRODUCT, "accent": ACCENT, "logo": logo, "showPoweredBy": True}
    )
    assert account.branding.resolved.product_name == PRODUCT and account.branding.resolved.tokens.accent == ACCENT

    created = client.browsers.create(name=unique("branded"), wait=30)
    browsers(created.id)
    set_cookie_and_visit(created.current_run.connections.cdp_url, f"{pages.url}/index.html", "b")
    view = client.views.create(
        scope=ViewScopeRuntimeInput(runtime_id=created.id),
        components=ViewComponentsInput(events=True, recordings=True),
        control=True,
    )
    with live.client() as raw:
        live_url = raw.post(f"/v1/runs/{created.current_run.id}/live", json={}).json()["iframeUrl"]

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            # The pages' own policy is in force (no bypass): the logo loads only because its origin is allowed.
            context = chromium.new_context(viewport={"width": 1280, "height": 720}, ignore_https_errors=True)
            page = context.new_page()
            response = page.goto(view.url)
            policy = response.headers["content-security-policy"]
            assert f"img-src 'self' data: blob: https://127.0.0.1:{logo_server.port};" in policy
            poll(partial(page.evaluate, "window.__view && window.__view.mode === 'live'"), timeout=30)
            assert page.text_content("#product") == PRODUCT  # as text: the markup-like name is not markup
            assert page.locator("#product *").count() == 0
            assert page.title() == f"{PRODUCT} · View"
            assert page.is_visible("#takeover")
            assert style(page, "#takeover", "backgroundColor") == ACCENT_RGB
            assert style(page, "#takeover", "color") == "rgb(17, 17, 17)"  # dark text reads better on orange
            poll(partial(page.evaluate, "document.getElementById('logo').naturalWidth > 0"), timeout=15)
            assert page.is_visible("#logo") and page.get_attribute("#logo", "src") == logo
            assert page.is_visible("#powered") and page.text_content("#powered") == "Powered by BCTRL"
            # The logo's origin and nothing broader: the same server under another name is refused.
            assert image_load(page, f"https://localhost:{logo_server.port}/logo.png") == "blocked"
            assert not any(h.startswith("localhost") for h in logo_server.hosts)
            # Inside the view page's frame the live page takes the colours, not a second name and logo.
            inner = live_frame(page)
            poll(partial(inner.evaluate, "window.__viewer.frames > 0"), timeout=30)
            assert inner.evaluate("document.documentElement.classList.contains('framed')")
            assert not inner.is_visible("#product") and not inner.is_visible("#powered")
            assert inner.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent')") == ACCENT
            page.screenshot(path=f"{SHOTS}/branding-view-live.png")

            # The live page opened on its own: the account's header.
            standalone = context.new_page()
            answer = standalone.goto(live_url)
            assert f"https://127.0.0.1:{logo_server.port}" in answer.headers["content-security-policy"]
            poll(partial(standalone.evaluate, "window.__viewer.frames > 0"), timeout=30)
            assert standalone.text_content("#product") == PRODUCT and standalone.is_visible("#product")
            poll(partial(standalone.evaluate, "document.getElementById('logo').naturalWidth > 0"), timeout=15)
            assert standalone.is_visible("#powered")
            standalone.screenshot(path=f"{SHOTS}/branding-live.png")
            standalone.close()

            # A change reaches the open view page at its next poll.
            client.account.update(branding={"productName": "Beta", "accent": "#1e40af", "showPoweredBy": False})
            poll(lambda: page.text_content("#product") == "Beta", timeout=10)
            assert style(page, "#takeover", "backgroundColor") == "rgb(30, 64, 175)"
            assert style(page, "#takeover", "color") == "rgb(255, 255, 255)"
            assert not page.is_visible("#powered")
            page.screenshot(path=f"{SHOTS}/branding-view-changed.png")

            # After the stop: the view shows the recording through the replay page, and the replay page
            # on its own carries the header.
            client.browsers.stop(created.id, wait=30)
            poll(partial(page.evaluate, "window.__view.mode === 'replay'"), timeout=30)
            inner = frame_of(page, "/replay")
            poll(partial(inner.evaluate, "window.__replay.loaded"), timeout=30)
            assert not inner.is_visible("header")
            page.screenshot(path=f"{SHOTS}/branding-view-replay.png")
            with live.client() as raw:
                replay_url = raw.post(f"/v1/runs/{created.current_run.id}/recording", json={}).json()["iframeUrl"]
            alone = context.new_page()
            alone.goto(replay_url)
            poll(partial(alone.evaluate, "window.__replay.loaded"), timeout=30)
            assert alone.text_content("#product") == "Beta" and alone.is_visible("#product")
            assert style(alone, "#play", "backgroundColor") == "rgb(30, 64, 175)"
            poll(partial(alone.evaluate, "document.getElementById('logo').naturalWidth > 0"), timeout=15)
            alone.screenshot(path=f"{SHOTS}/branding-replay.png")
        finally:
            chromium.close()


def test_a_view_answers_its_accounts_resolved_branding(client, branded):
    """`HostedView.branding` (create, get, list) is the account's `branding.resolved`, as it is now."""
    space = client.auth.whoami().default_space_id
    defaults = client.account.get().branding.resolved
    view = client.views.create(scope=ViewScopeSpaceInput(space_id=space))
    try:
        assert isinstance(view.branding, ResolvedBranding) and view.branding == defaults
        account = client.account.update(
            branding={"productName": PRODUCT, "accent": "#AA3300", "logo": "https://cdn.acme.test/logo.png"}
        )
        resolved = account.branding.resolved
        assert resolved.product_name == PRODUCT and resolved.tokens.accent == "#aa3300"
        assert resolved.logo == "https://cdn.acme.test/logo.png"
        got = client.views.get(view.id)
        assert got.branding == resolved and got.branding != defaults
        assert next(v for v in client.views.list(limit=200).data if v.id == view.id).branding == resolved
        second = client.views.create(scope=ViewScopeSpaceInput(space_id=space))
        try:
            assert second.branding == resolved
        finally:
            client.views.delete(second.id)
        client.account.update(branding={"productName": None, "accent": None, "logo": None})
        assert client.views.get(view.id).branding == defaults
    finally:
        client.views.delete(view.id)

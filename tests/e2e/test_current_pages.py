"""Pages of a running browser through the official 0.3 client, unchanged (`from bctrl import Bctrl`),
against a real server process and real Chromium, with pages served on 127.0.0.1: open, list, get,
navigate with its waits and timeout, screenshots and PDFs as a user would check them, activate,
close, and every refusal (another browser's page, a browser held by a CDP client, one not running)."""

from __future__ import annotations

import base64
import struct
import time

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, error_of, unique
from tests.support import PageServer, jpeg_size

SIZE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>sizing</title></head>
<body style="margin:0"><div style="height:3000px;background:linear-gradient(red,blue)"></div>
<script>document.title = `size ${innerWidth}x${innerHeight} ${document.documentElement.scrollHeight}`;</script>
</body></html>"""
# DOMContentLoaded at once; load only once the image's body (stalled 5 s by the page server) ends.
SLOW_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>slow page</title></head>
<body><img src="/stall/200"></body></html>"""
PLAIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>plain page</title></head>
<body><h1>plain</h1></body></html>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages-site")
    for name, text in (("size.html", SIZE_PAGE), ("slow.html", SLOW_PAGE), ("plain.html", PLAIN_PAGE)):
        (root / name).write_text(text)
    server = PageServer(root)
    yield server.url
    server.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def shown_size(title: str) -> tuple[int, int, int]:
    """(innerWidth, innerHeight, scrollHeight) as the size page reports them in its title."""
    _, dims, height = title.split(" ")
    width, inner = dims.split("x")
    return int(width), int(inner), int(height)


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ConflictError:
            value = None
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout}s"
            return value
        time.sleep(0.25)


def test_open_list_get_navigate_capture_activate_close(sdk, running, site):
    pages = sdk.browsers.pages
    before = pages.list(running.id)
    assert before.object == "pages.result" and before.status == "succeeded" and before.event_id
    first_ids = [page.id for page in before.data.data]

    opened = pages.open(running.id, url=f"{site}/size.html")
    page = opened.data
    assert opened.status == "succeeded" and opened.event_id
    assert page.object == "page" and page.active is True and page.url == f"{site}/size.html"
    assert page.run_id == running.current_run.id and page.title.startswith("size ")
    width, height, scroll_height = shown_size(page.title)
    assert page.id not in first_ids

    # The open is a run event of the API channel about this page (the same id the run's events use).
    event = sdk.events.get(opened.event_id)
    assert (event.category, event.channel, event.page_id) == ("page", "api", page.id)
    assert event.run_id == running.current_run.id

    listed = pages.list(running.id).data
    assert [p.id for p in listed.data] == sorted([*first_ids, page.id]) and listed.has_more is False
    assert [p.id for p in listed.data if p.active] == [page.id]
    one = pages.list(running.id, limit=1).data
    assert len(one.data) == 1 and one.has_more is True and one.next_cursor
    rest = pages.list(running.id, limit=50, cursor=one.next_cursor).data
    assert [p.id for p in one.data + rest.data] == [p.id for p in listed.data]

    got = pages.get(running.id, page.id).data
    assert (got.id, got.url, got.title, got.active) == (page.id, page.url, page.title, True)

    # Screenshots: the viewport as the page sees it, the whole page, a clip; png, jpeg and webp.
    shot = pages.screenshot(running.id, page.id)
    assert shot.data.mime_type == "image/png" and shot.data.page_id == page.id
    assert png_size(base64.b64decode(shot.data.data)) == (width, height)
    full = pages.screenshot(running.id, page.id, full_page=True, format="jpeg", quality=50)
    assert full.data.mime_type == "image/jpeg"
    assert jpeg_size(base64.b64decode(full.data.data)) == (width, scroll_height)
    # The full-page capture left the page's viewport as it was.
    assert png_size(base64.b64decode(pages.screenshot(running.id, page.id).data.data)) == (width, height)
    clipped = pages.screenshot(
        running.id,
        page.id,
        request_options={"additional_body_parameters": {"clip": {"x": 10, "y": 20, "width": 200, "height": 100}}},
    )
    assert png_size(base64.b64decode(clipped.data.data)) == (200, 100)
    webp = base64.b64decode(pages.screenshot(running.id, page.id, format="webp").data.data)
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"

    pdf = pages.pdf(running.id, page.id, landscape=True, print_background=True, scale=0.5)
    assert pdf.data.mime_type == "application/pdf" and pdf.data.object == "page.pdf"
    assert base64.b64decode(pdf.data.data).startswith(b"%PDF-")

    moved = pages.navigate(running.id, page.id, url=f"{site}/plain.html")
    assert moved.status == "succeeded" and moved.data.title == "plain page"
    assert moved.data.url == f"{site}/plain.html" and moved.data.id == page.id

    # A second page opened in the background leaves the first in front; activating it moves the front.
    second = pages.open(running.id, url=f"{site}/size.html", activate=False).data
    assert second.active is False and pages.get(running.id, page.id).data.active is True
    activated = pages.activate(running.id, second.id)
    assert activated.status == "succeeded" and activated.data.active is True
    assert pages.get(running.id, page.id).data.active is False
    assert [p.id for p in pages.list(running.id).data.data if p.active] == [second.id]

    closed = pages.close(running.id, second.id)
    assert closed.status == "succeeded" and closed.data.deleted is True and closed.data.id == second.id
    with pytest.raises(NotFoundError) as gone:
        pages.get(running.id, second.id)
    assert code_of(gone) == "resource.not_found"
    assert second.id not in [p.id for p in pages.list(running.id).data.data]
    pages.close(running.id, page.id)


def test_navigation_waits_and_times_out_without_keeping_the_browser(sdk, running, site):
    pages = sdk.browsers.pages
    page = pages.open(running.id).data
    assert page.url == "about:blank"
    try:
        started = time.monotonic()
        early = pages.navigate(
            running.id,
            page.id,
            url=f"{site}/slow.html",
            timeout_ms=4000,
            request_options={"additional_body_parameters": {"waitUntil": "domcontentloaded"}},
        )
        assert early.status == "succeeded" and early.data.title == "slow page"
        assert time.monotonic() - started < 4

        started = time.monotonic()
        late = pages.navigate(running.id, page.id, url=f"{site}/slow.html?again", timeout_ms=1000)
        took = time.monotonic() - started
        assert late.status == "unknown" and late.data.id == page.id and late.event_id
        assert 1 <= took < 4, took
        # Nothing is left held: the next operation goes through at once.
        started = time.monotonic()
        assert pages.get(running.id, page.id).status == "succeeded"
        assert time.monotonic() - started < 3

        idle = pages.navigate(
            running.id,
            page.id,
            url=f"{site}/plain.html",
            request_options={"additional_body_parameters": {"waitUntil": "networkidle"}},
        )
        assert idle.status == "succeeded" and idle.data.title == "plain page"

        started = time.monotonic()
        waited = pages.navigate(running.id, page.id, url=f"{site}/slow.html?third", timeout_ms=15000)
        assert waited.status == "succeeded" and time.monotonic() - started >= 4

        # A URL the browser will not load (a port it refuses): its own reason, and the page still there.
        with pytest.raises(ApiError) as refused:
            pages.navigate(running.id, page.id, url="http://127.0.0.1:9/", timeout_ms=5000)
        assert refused.value.status_code == 400 and "net::ERR_UNSAFE_PORT" in error_of(refused)["message"]
        assert pages.get(running.id, page.id).status == "succeeded"
    finally:
        pages.close(running.id, page.id)


def test_bad_input_is_refused_with_the_field_named(sdk, running, site):
    pages = sdk.browsers.pages
    page_id = pages.list(running.id).data.data[0].id
    cases = [
        lambda: pages.navigate(running.id, page_id, url="file:///etc/passwd"),
        lambda: pages.navigate(running.id, page_id, url=f"{site}/plain.html", timeout_ms=0),
        lambda: pages.open(running.id, url="javascript:alert(1)"),
        lambda: pages.screenshot(running.id, page_id, quality=50),
        lambda: pages.screenshot(running.id, page_id, format="gif"),
        lambda: pages.pdf(running.id, page_id, scale=5.0),
        lambda: pages.list(running.id, cursor="bm90LWEtY3Vyc29y"),
    ]
    for case in cases:
        with pytest.raises(BadRequestError) as bad:
            case()
        assert error_of(bad)["code"] in ("request.invalid", "pagination.cursor_invalid"), error_of(bad)
    with pytest.raises(NotFoundError) as unknown:
        pages.get(running.id, "0123456789ABCDEF0123456789ABCDEF")
    assert code_of(unknown) == "resource.not_found"


def test_a_cdp_client_holds_the_pages_until_it_disconnects(sdk, running, site):
    pages = sdk.browsers.pages
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(running.current_run.connections.cdp_url)
        try:
            with pytest.raises(ConflictError) as held:
                pages.list(running.id)
            assert code_of(held) == "browser.control_held" and "CDP client" in error_of(held)["message"]
            with pytest.raises(ConflictError) as refused:
                pages.open(running.id, url=f"{site}/plain.html")
            assert code_of(refused) == "browser.control_held"
            assert [p.url for p in browser.contexts[0].pages if p.url.endswith("plain.html")] == []
        finally:
            browser.close()
    assert wait_for(lambda: pages.list(running.id)).status == "succeeded"


def test_another_browsers_page_and_a_browser_not_running(sdk, running, live):
    other = sdk.browsers.create(name=unique("pages-other"), wait=30)
    try:
        theirs = sdk.browsers.pages.list(other.id).data.data[0].id
        with pytest.raises(NotFoundError) as foreign:
            sdk.browsers.pages.get(running.id, theirs)
        assert code_of(foreign) == "resource.not_found"
        with pytest.raises(NotFoundError):
            sdk.browsers.pages.navigate(running.id, theirs, url="http://127.0.0.1:9/")

        sdk.browsers.stop(other.id, wait=30)
        for call in (
            lambda: sdk.browsers.pages.list(other.id),
            lambda: sdk.browsers.pages.get(other.id, theirs),
            lambda: sdk.browsers.pages.open(other.id),
        ):
            with pytest.raises(ConflictError) as stopped:
                call()
            assert code_of(stopped) == "browser.not_running"
    finally:
        try:
            sdk.browsers.delete(other.id)
        except NotFoundError:
            pass

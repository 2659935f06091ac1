"""The console's Browsers page, as a person uses it in headless Chromium against a real server: signing
in (a wrong key says so), a browser started through the API appearing with a live thumbnail, copying a
CDP URL that Playwright connects to, revoking connections (the connected client is dropped), stopping
from the page. The page keeps its strict CSP (no bypass): a violation fails the test."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from bctrl._generated.errors import NotFoundError
from playwright.sync_api import expect, sync_playwright

from app.core.config import detect_chromium

SHOTS = Path("/tmp/shots")

# The colour at (fx, fy) of a row's thumbnail, read from the image itself (null before a picture).
PIXEL_JS = """(img, [fx, fy]) => {
  if (!img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3));
}"""
RED_PAGE = "data:text/html,<body style='margin:0;background:rgb(220,20,20)'><h1>console thumbnail</h1></body>"


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(pw):
    browser = pw.chromium.launch(executable_path=detect_chromium(), args=["--no-sandbox"])
    yield browser
    browser.close()


def new_console(chromium, live):
    """A fresh tab on the console (its own session storage), with CSP violations collected."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page = context.new_page()
    page.violations = []
    page.on("console", lambda m: page.violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(live.url + "/")
    return page


def sign_in(page, key: str) -> None:
    page.fill("#key", key)
    page.click("#sign-in-form button[type=submit]")


@pytest.fixture(scope="module")
def console(chromium, live):
    page = new_console(chromium, live)
    sign_in(page, live.api_key)
    expect(page.locator("#nav")).to_be_visible()
    yield page
    assert page.violations == [], page.violations
    page.context.close()


def test_a_wrong_key_is_refused_with_the_servers_words(chromium, live):
    page = new_console(chromium, live)
    sign_in(page, "bctrl_not_a_key_" + uuid.uuid4().hex)
    error = page.locator("#sign-in-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("This key was not accepted")
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0  # the refused key is not kept
    page.screenshot(path=str(SHOTS / "sign-in-error.png"))
    page.context.close()


@pytest.fixture(scope="module")
def started(sdk, console):
    """A browser started through the API while the Browsers page is open; deleted afterwards."""
    console.goto(console.url.split("#")[0] + "#/browsers")
    expect(console.locator("#page h1")).to_have_text("Browsers")
    made = sdk.browsers.create(name=f"console-{uuid.uuid4().hex[:8]}", wait=30)
    assert made.status == "running", made
    yield made
    try:
        sdk.browsers.delete(made.id)
    except NotFoundError:
        pass


def row_of(page, browser_id: str):
    return page.locator(f'tr[data-browser-id="{browser_id}"]')


def copied_cdp_url(page, browser_id: str) -> str:
    row_of(page, browser_id).get_by_role("button", name="Copy CDP URL").click()
    field = page.locator("input.cdp-url")
    expect(field).to_be_visible()
    url = field.input_value()
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    return url


def test_a_browser_started_elsewhere_appears_running_with_a_live_thumbnail(console, started, pw):
    row = row_of(console, started.id)
    expect(row).to_be_visible(timeout=10_000)  # no reload: the list refreshes itself
    expect(row.locator(".pill")).to_have_text("running")
    expect(row).to_contain_text(started.name)
    expect(row.locator(".uptime")).not_to_have_text("—")
    expect(row.get_by_role("link", name="Live view")).to_have_attribute("href", f"#/browsers/{started.id}/live")

    # What the browser shows reaches the thumbnail: paint its page red through the copied CDP URL.
    client = pw.chromium.connect_over_cdp(copied_cdp_url(console, started.id))
    try:
        tab = client.contexts[0].pages[0] if client.contexts and client.contexts[0].pages else client.new_page()
        tab.goto(RED_PAGE)
        thumb = row.locator("img.thumb")
        deadline = time.monotonic() + 15
        colour = None
        while time.monotonic() < deadline:
            colour = thumb.evaluate(PIXEL_JS, [0.5, 0.9]) if thumb.is_visible() else None
            if colour and colour[0] > 150 and colour[1] < 90 and colour[2] < 90:
                break
            time.sleep(0.5)
        assert colour and colour[0] > 150 and colour[1] < 90, colour
        assert thumb.evaluate("img => img.naturalWidth") > 100
        # The CDP client holds control, in the words the live page uses too.
        expect(row.locator(".holder")).to_have_text("a script (CDP client, task or API call)", timeout=10_000)
        # The space of a new browser has a visible label.
        expect(console.get_by_label("in space", exact=True)).to_be_visible()
        console.screenshot(path=str(SHOTS / "polish-browsers.png"))
    finally:
        client.close()
    console.screenshot(path=str(SHOTS / "browsers.png"))


def test_revoke_connections_drops_a_connected_client(console, started, pw):
    row = row_of(console, started.id)
    client = pw.chromium.connect_over_cdp(copied_cdp_url(console, started.id))
    try:
        assert client.is_connected()
        row.get_by_role("button", name="Revoke connections").click()
        expect(console.locator(".messages")).to_contain_text("revoked")
        deadline = time.monotonic() + 10
        while client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not client.is_connected()
    finally:
        client.close()
    # The browser goes on running, with a new CDP URL that works.
    fresh = copied_cdp_url(console, started.id)
    again = pw.chromium.connect_over_cdp(fresh)
    assert again.is_connected()
    again.close()


def test_stop_from_the_page_asks_first_then_stops(console, started, sdk):
    row = row_of(console, started.id)
    row.get_by_role("button", name="Stop", exact=True).click()
    expect(row).to_contain_text(f"Stop {started.name}?")
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".pill")).to_have_text("running")
    row.get_by_role("button", name="Stop", exact=True).click()
    row.get_by_role("button", name="Stop it").click()
    expect(console.locator(".messages")).to_contain_text(f"Stopped {started.name}", timeout=35_000)
    expect(row.locator(".pill")).to_have_text("idle", timeout=10_000)
    expect(row.get_by_role("button", name="Start")).to_be_visible()
    assert sdk.browsers.get(started.id).status == "idle"
    console.screenshot(path=str(SHOTS / "browsers-stopped.png"))


def test_a_refused_start_shows_the_servers_words(console, started):
    # A second browser with a name taken: the server's 409 message and code, not a generic failure.
    console.fill("#new-name", started.name)
    console.get_by_role("button", name="Start a browser").click()
    message = console.locator(".messages .error")
    expect(message).to_be_visible()
    expect(message).to_contain_text(started.name)
    expect(message).to_contain_text("(")  # the envelope's code, in parentheses

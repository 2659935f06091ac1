"""Live view, seen as a person would: the viewer page in a real (headless) Chromium shows the run's
browser, follows its tabs, and in `input` mode drives it; `none` mode changes nothing whatever the
page sends; the controller lock works both ways; bad links are refused without saying anything."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid

import httpx
import orjson
import pytest
import websockets
from playwright.sync_api import sync_playwright

from app.core.config import detect_chromium
from tests.e2e.conftest import lease
from tests.e2e.test_cdp import wait_for

# The pixel colour at (x, y) fractions of the viewer's picture, read from the picture itself.
PIXEL_JS = """([fx, fy]) => {
  const img = document.getElementById('screen');
  if (!img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3));
}"""


def dominant(rgb: list[int] | None) -> str | None:
    if not rgb:
        return None
    r, g, b = rgb
    if r > 150 and g < 90 and b < 90:
        return "red"
    if g > 140 and r < 90 and b < 90:
        return "green"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    return "other"


def in_thread(coro):
    """Run a coroutine to the end on its own loop (Playwright's sync API owns this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def mint(client: httpx.Client, run_id: str, **body) -> httpx.Response:
    return client.post(f"/v1/runs/{run_id}/live", json=body)


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def viewer_browser(pw):
    """The person's browser that opens the viewer page (the run's browser is another one)."""
    browser = pw.chromium.launch(executable_path=detect_chromium(), args=["--no-sandbox"])
    yield browser
    browser.close()


def open_viewer(viewer_browser, url: str):
    # bypass_csp: the page forbids eval, which Playwright's wait_for_function uses when polling.
    page = viewer_browser.new_page(viewport={"width": 1000, "height": 700}, bypass_csp=True)
    page.goto(url)
    page.wait_for_function(
        "window.__viewer && window.__viewer.frames > 0 && window.__viewer.state === 'live'", timeout=15_000
    )
    return page


def colour_in_viewer(page, fx: float = 0.05, fy: float = 0.9) -> str | None:
    return dominant(page.evaluate(PIXEL_JS, [fx, fy]))


def test_viewer_shows_the_page_follows_changes_and_tabs(live, runtime, pages, pw, viewer_browser, tmp_path):
    with live.client() as client:
        url = lease(client, runtime).json()["endpoint"]["url"]
        browser = pw.chromium.connect_over_cdp(url)
        controlled = browser.contexts[0].new_page()
        controlled.goto(f"{pages.url}/controls.html")
        minted = mint(client, runtime["activeRunId"])
        assert minted.status_code == 200, minted.text
        body = minted.json()
        assert body["iframeUrl"] == body["url"] and body["control"] == "none"
        viewer = open_viewer(viewer_browser, body["iframeUrl"])
        assert viewer.evaluate("window.__viewer.url").endswith("/controls.html")
        wait_for(lambda: colour_in_viewer(viewer) == "red")
        viewer.screenshot(path=str(tmp_path / "viewer.png"))

        # The picture changes when the page does.
        controlled.evaluate("document.body.style.background = 'rgb(0, 0, 230)'")
        wait_for(lambda: colour_in_viewer(viewer) == "blue")

        # A new tab is followed, and closing it goes back to the one before.
        second = browser.contexts[0].new_page()
        second.goto(f"{pages.url}/two.html")
        wait_for(lambda: (viewer.evaluate("window.__viewer.url") or "").endswith("/two.html"))
        second.close()
        wait_for(lambda: (viewer.evaluate("window.__viewer.url") or "").endswith("/controls.html"))
        wait_for(lambda: colour_in_viewer(viewer) == "blue")

        # No page open: an empty state, not an error.
        for page in browser.contexts[0].pages:
            page.close()
        wait_for(lambda: viewer.evaluate("window.__viewer.state") == "no_page")
        assert "No page is open" in viewer.text_content("#empty")
        browser.close()

        events = client.get(f"/v1/runs/{runtime['activeRunId']}/events", params={"category": "live"}).json()["data"]
        assert {"live.created", "live.opened"} <= {e["type"] for e in events}
        viewer.close()


def test_a_viewer_opened_on_several_tabs_shows_the_newest(live, space, pages, pw, viewer_browser, stop_afterwards):
    """The picture starts on the tab opened last, whatever order Chromium lists its tabs in (it does not
    list them in the order they were opened), and follows the one before it when that one closes. The run
    records nothing, so the viewer's picture is the first of the run (a recorder's would have seen every
    tab open, in order); a replica that takes a run over starts its recorder's picture the same way."""
    with live.client() as client:
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={"recording": False}).json()
        assert runtime["status"] == "active", runtime
        stop_afterwards(runtime["id"])
        run_id = runtime["activeRunId"]
        browser = pw.chromium.connect_over_cdp(lease(client, runtime).json()["endpoint"]["url"])
        cdp = browser.new_browser_cdp_session()

        def listed_last() -> str:
            return [i["url"] for i in cdp.send("Target.getTargets")["targetInfos"] if i["type"] == "page"][-1]

        # Tabs are opened until Chromium's list does not end with the newest (its order looks like a hash
        # map's), so taking the list's last page would show the wrong one.
        tabs = []
        while len(tabs) < 3 or listed_last() == tabs[-1].url:
            assert len(tabs) < 20, "Chromium listed the newest tab last every time"
            tab = browser.contexts[0].new_page()
            tab.goto(f"{pages.url}/two.html?tab={len(tabs)}")
            tabs.append(tab)

        def opened() -> int:
            found = client.get(f"/v1/runs/{run_id}/events", params={"type": "page.created", "limit": 100})
            return len(found.json()["data"])

        wait_for(lambda: opened() >= len(tabs))  # the order is read from these events
        viewer = open_viewer(viewer_browser, mint(client, run_id).json()["url"])
        assert viewer.evaluate("window.__viewer.url") == tabs[-1].url
        tabs.pop().close()
        wait_for(lambda: viewer.evaluate("window.__viewer.url") == tabs[-1].url)
        viewer.close()
        browser.close()


def _controls_state(pw, client: httpx.Client, runtime: dict) -> dict:
    """What the controlled page shows, read over a fresh CDP lease (revoked afterwards)."""
    created = lease(client, runtime)
    assert created.status_code == 201, created.text
    try:
        browser = pw.chromium.connect_over_cdp(created.json()["endpoint"]["url"])
        page = next(p for p in browser.contexts[0].pages if p.url.endswith("/controls.html"))
        state = page.evaluate("({clicks: window.clicks, field: document.getElementById('field').value})")
        browser.close()
    finally:
        revoke(client, runtime, created.json()["id"])
    return state


def revoke(client: httpx.Client, runtime: dict, connection_id: str) -> None:
    response = client.delete(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections/{connection_id}")
    assert response.status_code == 200, response.text


def _prepare_controls(pw, client: httpx.Client, runtime: dict, pages) -> None:
    created = lease(client, runtime).json()
    browser = pw.chromium.connect_over_cdp(created["endpoint"]["url"])
    page = browser.contexts[0].pages[0] if browser.contexts[0].pages else browser.contexts[0].new_page()
    page.goto(f"{pages.url}/controls.html")
    browser.close()
    revoke(client, runtime, created["id"])


def test_input_mode_clicks_and_types_and_holds_the_controller_lock(live, runtime, pages, pw, viewer_browser, tmp_path):
    with live.client() as client:
        _prepare_controls(pw, client, runtime, pages)
        run_id = runtime["activeRunId"]
        # While a CDP lease controls the browser, input mode is refused.
        held = lease(client, runtime)
        busy = mint(client, run_id, control="input")
        assert busy.status_code == 409 and busy.json()["code"] == "runtime.controller_busy", busy.text
        revoke(client, runtime, held.json()["id"])

        minted = mint(client, run_id, control="input", expiresInSeconds=600)
        assert minted.status_code == 200, minted.text
        viewer = open_viewer(viewer_browser, minted.json()["iframeUrl"])
        viewer.wait_for_function("window.__viewer?.control === 'controlling'")
        # While the viewer is open, a CDP lease is refused, naming the live view as the holder.
        refused = lease(client, runtime)
        assert refused.status_code == 409 and refused.json()["code"] == "runtime.controller_busy"
        assert refused.json()["details"]["holder"]["kind"] == "live_view"

        # Click the page's button (it covers 10-90% x 10-45% of the page), then type into the field.
        box = viewer.locator("#screen").bounding_box()
        viewer.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.27)
        viewer.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.67)
        viewer.keyboard.type("hello live")
        viewer.keyboard.press("Backspace")
        # The server applies a viewer's messages in order: once the hand-back is through, so is the input.
        viewer.click("#handback")
        viewer.wait_for_function("window.__viewer?.control === 'available'")
        viewer.screenshot(path=str(tmp_path / "viewer-input.png"))
        viewer.close()

        state = wait_for(lambda: _try_state(pw, client, runtime), timeout=15)
        assert state == {"clicks": 1, "field": "hello liv"}
        types = [
            e["type"]
            for e in client.get(f"/v1/runs/{run_id}/events", params={"category": "live", "limit": 200}).json()["data"]
        ]
        assert {"live.opened", "live.takeover", "live.handback", "live.closed"} <= set(types)


def _try_state(pw, client: httpx.Client, runtime: dict) -> dict | None:
    if lease(client, runtime).status_code == 409:
        return None
    # That probe lease holds the lock now: revoke it, then read.
    for connection in client.get(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections").json()[
        "data"
    ]:
        if connection["status"] == "active":
            revoke(client, runtime, connection["id"])
    return _controls_state(pw, client, runtime)


def test_watch_only_ignores_input_whatever_the_page_sends(live, runtime, pages, pw):
    with live.client() as client:
        _prepare_controls(pw, client, runtime, pages)
        token = mint(client, runtime["activeRunId"], control="none").json()["url"].split("token=", 1)[1]

        async def hammer() -> int:
            uri = f"{live.url.replace('http', 'ws')}/v1/live/socket?token={token}"
            async with websockets.connect(uri, max_size=None) as ws:
                frames = 0
                while frames < 1:
                    message = orjson.loads(await ws.recv())
                    frames += message["type"] == "frame"
                for message in (
                    {"type": "takeover"},
                    {"type": "mouse", "event": "down", "x": 0.5, "y": 0.27, "button": "left"},
                    {"type": "mouse", "event": "up", "x": 0.5, "y": 0.27, "button": "left"},
                    {"type": "mouse", "event": "down", "x": 0.5, "y": 0.67, "button": "left"},
                    {"type": "mouse", "event": "up", "x": 0.5, "y": 0.67, "button": "left"},
                    {"type": "key", "event": "down", "key": "x"},
                    {"type": "text", "text": "typed"},
                ):
                    await ws.send(orjson.dumps(message).decode())
                await asyncio.sleep(1.0)
                return frames

        assert in_thread(hammer()) == 1
        assert _controls_state(pw, client, runtime) == {"clicks": 0, "field": ""}


def test_nonsense_input_is_ignored_and_the_session_goes_on(live, runtime, pages, pw):
    with live.client() as client:
        _prepare_controls(pw, client, runtime, pages)
        token = mint(client, runtime["activeRunId"], control="input").json()["url"].split("token=", 1)[1]

        async def nonsense() -> None:
            uri = f"{live.url.replace('http', 'ws')}/v1/live/socket?token={token}"
            async with websockets.connect(uri, max_size=None) as ws:
                while orjson.loads(await ws.recv())["type"] != "frame":
                    pass
                for raw in (
                    "not json",
                    "[1,2]",
                    orjson.dumps({"type": "mouse", "event": "down", "x": 1e309}),
                    orjson.dumps({"type": "mouse", "event": "down", "x": -3, "y": 7}),
                    orjson.dumps({"type": "mouse", "event": "explode", "x": 0.5, "y": 0.5}),
                    orjson.dumps({"type": "key", "event": "down", "key": "DROP TABLE runs"}),
                    orjson.dumps({"type": "text", "text": "x" * 100_000}),
                    orjson.dumps({"type": "wheel", "x": 0.5, "y": 0.5, "deltaY": "lots"}),
                ):
                    await ws.send(raw if isinstance(raw, str) else raw.decode())
                # Still alive, and valid input after the nonsense works.
                for event in ("down", "up"):
                    await ws.send(
                        orjson.dumps({"type": "mouse", "event": event, "x": 0.5, "y": 0.27, "button": "left"}).decode()
                    )
                await asyncio.sleep(1.0)

        in_thread(nonsense())
        assert wait_for(lambda: _try_state(pw, client, runtime), timeout=15) == {"clicks": 1, "field": ""}


def test_bad_links_are_refused_without_saying_anything(live, runtime, pages):
    with live.client() as client:
        run_id = runtime["activeRunId"]
        token = mint(client, run_id, expiresInSeconds=1).json()["url"].split("token=", 1)[1]
        payload, signature = token.split(".")
        forged = f"{payload[:-2]}AA.{signature}"

        async def refused(raw: str) -> tuple[int | None, list]:
            """The close code the viewer page gets, and whatever was sent before it (nothing)."""
            received = []
            async with websockets.connect(f"{live.url.replace('http', 'ws')}/v1/live/socket?token={raw}") as ws:
                try:
                    while True:
                        received.append(await ws.recv())
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None, received

        assert in_thread(refused(forged)) == (4401, [])
        assert in_thread(refused("garbage")) == (4401, [])
        time.sleep(1.2)
        assert in_thread(refused(token)) == (4401, [])  # expired
        data = httpx.get(f"{live.url}/v1/replay/data", params={"token": forged})
        assert data.status_code == 401 and data.json()["code"] == "viewer.token_invalid"
        assert run_id not in data.text

        # Bad bodies and other accounts' runs.
        assert mint(client, run_id, control="drive").status_code == 400
        assert mint(client, run_id, expiresInSeconds=86_401).status_code == 400
        assert mint(client, str(uuid.uuid4())).status_code == 404


def test_viewer_says_when_the_run_ends(live, space, pages, pw, viewer_browser, stop_afterwards):
    with live.client() as client:
        rt = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        stop_afterwards(rt["id"])
        _prepare_controls(pw, client, rt, pages)
        viewer = open_viewer(viewer_browser, mint(client, rt["activeRunId"]).json()["iframeUrl"])
        client.post(f"/v1/spaces/{space['id']}/runtimes/{rt['id']}/stop")
        viewer.wait_for_function("window.__viewer.state === 'ended'", timeout=15_000)
        assert "ended" in viewer.text_content("#empty")
        viewer.close()
        ended = mint(client, rt["activeRunId"])
        assert ended.status_code == 409 and ended.json()["code"] == "run.live_not_active"


def test_viewer_page_says_when_its_link_is_invalid(live, viewer_browser):
    page = viewer_browser.new_page(bypass_csp=True)
    page.goto(f"{live.url}/live?token=not-a-real-token")
    page.wait_for_function("window.__viewer.state === 'invalid'", timeout=10_000)
    assert "invalid or has expired" in page.text_content("#empty")
    page.close()


def test_revoking_an_open_input_link_closes_the_page_and_frees_the_browser(live, runtime, pages, pw, viewer_browser):
    with live.client() as client:
        _prepare_controls(pw, client, runtime, pages)
        minted = mint(client, runtime["activeRunId"], control="input", expiresInSeconds=600).json()
        viewer = open_viewer(viewer_browser, minted["iframeUrl"])
        viewer.wait_for_function("window.__viewer?.control === 'controlling'")
        assert lease(client, runtime).status_code == 409

        revoked = client.delete(f"/v1/runs/{runtime['activeRunId']}/viewers/{minted['viewerId']}")
        assert revoked.status_code == 200, revoked.text
        viewer.wait_for_function("window.__viewer.state === 'revoked'", timeout=10_000)
        assert "revoked" in viewer.text_content("#empty")
        # The page gave control back: a CDP lease can be taken at once.
        taken = wait_for(lambda: (r := lease(client, runtime)).status_code == 201 and r, timeout=10)
        revoke(client, runtime, taken.json()["id"])
        viewer.close()

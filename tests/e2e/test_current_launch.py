"""How a browser is launched, through the official 0.3 client unchanged against a real server process,
and Playwright over the run's CDP URL, as a user's script sees it: the page's viewport is the one asked
(1280x720 when none is), on the first page and on new tabs; headful browsers on a virtual display; a user
agent without HeadlessChrome; history navigation and reloads as on a Chromium Playwright launches, each
once in the run's events; a forgotten browser stops itself after its idle timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bctrl import Bctrl
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import cluster, lease
from tests.e2e.test_current_sdk import unique

SEEN = "[innerWidth, innerHeight, navigator.userAgent]"
BRANDS = "navigator.userAgentData.brands.map(b => b.brand).join(',')"


def _eventually(probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _sizes(cdp_url: str, url: str) -> dict:
    """What the default page, a page loaded in it and a new tab report."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.pages[0]
        seen = {"viewportSize": page.viewport_size, "first": page.evaluate(SEEN)}
        page.goto(url)
        seen["loaded"] = page.evaluate(SEEN)
        seen["brands"] = page.evaluate(BRANDS)
        tab = context.new_page()
        seen["tab"] = tab.evaluate(SEEN)
        tab.close()
        browser.close()
    return seen


def test_default_viewport_is_1280x720_and_the_agent_is_not_headless(client, browsers, pages):
    created = client.browsers.create(name=unique("launch-default"), wait=30)
    browsers(created.id)
    assert created.viewport.width == 1280 and created.viewport.height == 720
    seen = _sizes(created.current_run.connections.cdp_url, f"{pages.url}/one.html")
    assert seen["viewportSize"] is None  # not emulated: the window itself gives the page its size
    for key in ("first", "loaded", "tab"):
        width, height, agent = seen[key]
        assert (width, height) == (1280, 720), (key, seen)
        assert "HeadlessChrome" not in agent and "Chrome/" in agent, agent
    assert "Headless" not in seen["brands"] and "Chromium" in seen["brands"]


def test_the_viewport_asked_is_the_pages_on_every_tab(client, browsers, pages):
    created = client.browsers.create(name=unique("launch-vp"), wait=30, viewport={"width": 1280, "height": 800})
    browsers(created.id)
    seen = _sizes(created.current_run.connections.cdp_url, f"{pages.url}/one.html")
    assert [seen[k][:2] for k in ("first", "loaded", "tab")] == [[1280, 800]] * 3, seen

    # Changed while idle: the next run's pages get the new size, headful this time.
    client.browsers.stop(created.id, wait=30, discard_state=True)
    client.browsers.update(created.id, viewport={"width": 1024, "height": 700}, headless=False)
    started = client.browsers.start(created.id, wait=30)
    assert len(_displays_of(created.id)) == 1, "the next run is headful"
    again = _sizes(started.current_run.connections.cdp_url, f"{pages.url}/two.html")
    assert [again[k][:2] for k in ("first", "loaded", "tab")] == [[1024, 700]] * 3, again


def _displays_of(browser_id: str) -> set[int]:
    """The Xvfb processes of that browser (its display's auth file lives in the browser's profile, named
    after the browser)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "Xvfb" and browser_id.encode() in (
                    entry / "cmdline"
                ).read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_headful_browser_on_its_own_display(client, browsers, pages):
    created = client.browsers.create(
        name=unique("launch-headful"), wait=30, headless=False, viewport={"width": 1100, "height": 650}
    )
    browsers(created.id)
    assert len(_displays_of(created.id)) == 1, "one virtual display for the headful browser"
    seen = _sizes(created.current_run.connections.cdp_url, f"{pages.url}/one.html")
    assert [seen[k][:2] for k in ("first", "loaded", "tab")] == [[1100, 650]] * 3, seen
    assert all("HeadlessChrome" not in seen[k][2] for k in ("first", "loaded", "tab"))

    # It renders: a screenshot and a screencast frame (what the live view and recordings use).
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
        page = browser.contexts[0].pages[0]
        page.goto(f"{pages.url}/two.html")
        assert page.screenshot()[:8] == b"\x89PNG\r\n\x1a\n"
        session = browser.contexts[0].new_cdp_session(page)
        frames: list = []
        session.on("Page.screencastFrame", lambda frame: frames.append(frame))
        session.send("Page.startScreencast", {"format": "jpeg", "quality": 50})
        page.evaluate("document.body.style.background = 'rgb(200, 30, 30)'")
        assert _eventually(lambda: frames or page.wait_for_timeout(100), 10), "no screencast frame"
        assert frames[0]["metadata"]["deviceWidth"] == 1100
        browser.close()

    client.browsers.stop(created.id, wait=30)
    assert _eventually(lambda: not _displays_of(created.id), 10), "the display stops with its browser"
    # Its run was recorded as a headless one is.
    run_id = created.current_run.id
    recording = _eventually(
        lambda: (r := client.runs.recordings.get(run_id, run_id)).status in ("succeeded", "failed") and r, 90
    )
    assert recording and recording.status == "succeeded" and recording.size_bytes > 0, recording


def _events(client, run_id: str, type: str) -> list:
    return client.events.list(run=run_id, type=type, order="asc", limit=200).data


def test_history_navigation_and_reload_work_and_are_recorded_once(client, browsers, pages):
    created = client.browsers.create(name=unique("launch-history"), wait=30)
    browsers(created.id)
    run = created.current_run
    one, two = f"{pages.url}/one.html", f"{pages.url}/two.html"
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(run.connections.cdp_url)
        page = browser.contexts[0].pages[0]
        page.goto(one)
        page.goto(two)
        started = time.monotonic()
        page.go_back(timeout=5000)
        back_took = time.monotonic() - started
        assert page.url == one and page.title() == "page one"
        page.go_forward(timeout=5000)
        assert page.url == two
        page.reload(timeout=5000)
        assert page.url == two and page.title() == "page two"
        # And a tab opened later (a target the run's observer attaches to as it comes).
        tab = browser.contexts[0].new_page()
        tab.goto(two)
        tab.go_back(timeout=5000)
        assert tab.url == "about:blank"
        browser.close()
    assert back_took < 2.0, f"go_back took {back_took:.1f} s"

    # Page one ran twice (goto, back), page two four times (goto, forward, reload, the tab): each line once a run.
    def lines():
        texts = [e.data["text"] for e in _events(client, run.id, "console.message")]
        done = texts.count("arrived on page two") >= 4 and texts.count("hello from page one 42") >= 2
        return texts if done else None

    texts = _eventually(lines)
    assert texts, _events(client, run.id, "console.message")
    assert texts.count("arrived on page two") == 4 and texts.count("hello from page one 42") == 2, texts
    # Every top-level navigation finished: as many loads as navigations, to the same URLs.
    navigated = [e.data["url"] for e in _events(client, run.id, "page.navigated") if e.data["url"] != "about:blank"]

    def loads():
        found = [e.data["url"] for e in _events(client, run.id, "page.load")]
        return found if found.count(two) >= 4 else None

    loaded = _eventually(loads) or [e.data["url"] for e in _events(client, run.id, "page.load")]
    assert navigated == [one, two, one, two, two, two], navigated
    assert [u for u in loaded if u != "about:blank"] == navigated, loaded


@pytest.fixture(scope="module")
def quick_idle(tmp_path_factory):
    """A server whose browsers stop after 3 s without a client (BCTRL_IDLE_TIMEOUT_MAX_SECONDS)."""
    with cluster(tmp_path_factory.mktemp("idle"), BCTRL_IDLE_TIMEOUT_MAX_SECONDS="3") as servers:
        yield servers[0]


def test_a_forgotten_browser_stops_itself_and_a_used_one_does_not(quick_idle, pages):
    sdk = Bctrl(token=quick_idle.api_key, base_url=quick_idle.url)
    forgotten = sdk.browsers.create(name=unique("idle-forgotten"), wait=30)
    used = sdk.browsers.create(name=unique("idle-used"), wait=30)
    try:
        with sync_playwright() as pw:
            # `used` has a client attached (as a script that is still working); `forgotten` has none.
            browser = pw.chromium.connect_over_cdp(used.current_run.connections.cdp_url)
            browser.contexts[0].pages[0].goto(f"{pages.url}/one.html")
            ended = _eventually(lambda: sdk.runs.get(forgotten.current_run.id).status == "ended", 15)
            assert ended, sdk.runs.get(forgotten.current_run.id)
            run = sdk.runs.get(forgotten.current_run.id)
            assert run.end_reason == "idle_timeout"
            assert sdk.browsers.get(forgotten.id).status == "idle"
            # The used one kept running all along.
            assert sdk.browsers.get(used.id).status == "running"
            assert browser.contexts[0].pages[0].evaluate("1 + 1") == 2
            browser.close()
        # Once its client left, it too stops by itself.
        assert _eventually(lambda: sdk.runs.get(used.current_run.id).status == "ended", 15)
        assert sdk.runs.get(used.current_run.id).end_reason == "idle_timeout"
    finally:
        for made in (forgotten, used):
            sdk.browsers.delete(made.id)


def test_the_earlier_generations_viewport_means_the_same(live, space, stop_afterwards, pages):
    with live.client() as api:
        for config in (
            {"viewport": {"width": 1024, "height": 768}},
            {"fingerprint": {"viewport": {"width": 900, "height": 600}}},
        ):
            runtime = api.post(f"/v1/spaces/{space['id']}/runtimes", json={"config": config}).json()
            stop_afterwards(runtime["id"])
            assert runtime["status"] == "active", runtime
            url = lease(api, runtime).json()["endpoint"]["url"]
            seen = _sizes(url, f"{pages.url}/one.html")
            asked = config.get("viewport") or config["fingerprint"]["viewport"]
            expected = [asked["width"], asked["height"]]
            assert [seen[k][:2] for k in ("first", "loaded", "tab")] == [expected] * 3, seen
            api.post(f"/v1/runtimes/{runtime['id']}/stop")

"""How a browser is launched by the Docker driver, through the official 0.3 client and Playwright over the
run's CDP URL: the page's viewport is the one asked (default 1280x720) on every tab, headful browsers run
on the container's own Xvfb, the user agent never says HeadlessChrome, and history navigation works."""

from __future__ import annotations

import time

import pytest
from bctrl import Bctrl
from playwright.sync_api import sync_playwright

from tests.docker.conftest import containers_of
from tests.e2e.test_current_sdk import unique

SEEN = "[innerWidth, innerHeight, navigator.userAgent]"


@pytest.fixture
def sdk(dlive):
    return Bctrl(token=dlive.api_key, base_url=dlive.url)


@pytest.fixture
def browsers(sdk):
    made: list[str] = []
    yield made.append
    for browser_id in made:
        sdk.browsers.delete(browser_id)


def _drive(cdp_url: str, one: str, two: str) -> dict:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.pages[0]
        seen = {"first": page.evaluate(SEEN)}
        page.goto(one)
        page.goto(two)
        started = time.monotonic()
        page.go_back(timeout=5000)
        seen["back"] = (page.url, time.monotonic() - started)
        seen["loaded"] = page.evaluate(SEEN)
        tab = context.new_page()
        seen["tab"] = tab.evaluate(SEEN)
        browser.close()
    return seen


@pytest.mark.parametrize(
    ("headless", "viewport", "expected"),
    [(True, None, [1280, 720]), (False, {"width": 1100, "height": 650}, [1100, 650])],
    ids=["headless-default", "headful"],
)
def test_viewport_agent_and_history_in_a_container(sdk, browsers, engine, pages, headless, viewport, expected):
    options = {"viewport": viewport} if viewport else {}
    created = sdk.browsers.create(name=unique("docker-launch"), wait=60, headless=headless, **options)
    browsers(created.id)
    [container] = containers_of(engine, created.id)
    environment = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert environment["BCTRL_HEADLESS"] == ("1" if headless else "0")
    if not headless:
        assert "Xvfb" in str(container.top()["Processes"]), "the container runs its own display"
    one, two = f"{pages.url}/one.html", f"{pages.url}/two.html"
    seen = _drive(created.current_run.connections.cdp_url, one, two)
    assert [seen[k][:2] for k in ("first", "loaded", "tab")] == [expected] * 3, seen
    assert all("HeadlessChrome" not in seen[k][2] and "Chrome/" in seen[k][2] for k in ("first", "tab")), seen
    assert seen["back"][0] == one and seen["back"][1] < 2.0, seen

"""The console's live page, as a person uses it in headless Chromium against a real server: the browser's
tabs and the URL of the one shown follow the browser (opened and navigated through the API); Take control,
click and type in the picture, give it back, and the run's events credit the clicks and typing to the
person (actor `human`), never to the script; while a Playwright client holds the browser over CDP, Take
control is refused and the page shows the server's reason. The console keeps its strict CSP (no bypass)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from bctrl._generated.errors import NotFoundError
from playwright.sync_api import expect, sync_playwright

from app.core.config import detect_chromium

SHOTS = Path("/tmp/shots")
VERSION = "2026-10-03"


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=detect_chromium(), args=["--no-sandbox"])
        yield pw, browser
        browser.close()


def api(live) -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}", "BCTRL-Version": VERSION}, timeout=60
    )


def events_of(client: httpx.Client, run_id: str) -> list[dict]:
    """The run's events of people (current category `human`) and of control changes, oldest first."""
    answer = client.get(
        "/v1/events", params={"run": run_id, "limit": 200, "category": ["human", "control"], "order": "asc"}
    )
    assert answer.status_code == 200, answer.text
    return sorted(answer.json()["data"], key=lambda e: e["seq"])


def test_live_page_tabs_url_take_control_events_and_a_refusal(chromium, live, sdk, pages):
    pw, browser = chromium
    SHOTS.mkdir(exist_ok=True)
    made = sdk.browsers.create(name=f"live-{uuid.uuid4().hex[:8]}", wait=30)
    run_id = made.current_run.id
    console = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    violations: list[str] = []
    console.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        with api(live) as client:
            # The browser shows the controls page (the API opens it: a new tab, the one the live view shows).
            opened = client.post(f"/v1/browsers/{made.id}/pages", json={"url": f"{pages.url}/controls.html"})
            assert opened.status_code == 200, opened.text
            page_id = opened.json()["data"]["id"]

            console.goto(live.url + "/")
            console.fill("#key", live.api_key)
            console.click("#sign-in-form button[type=submit]")
            expect(console.locator("#nav")).to_be_visible()
            console.goto(f"{live.url}/#/browsers/{made.id}/live")

            tabs = console.locator(".live-tabs li")
            expect(console.locator(".live-state")).to_have_text("Live", timeout=20_000)
            expect(console.locator(".live-url")).to_have_text(f"{pages.url}/controls.html")
            expect(console.locator(".live-tabs li.current .tab-title")).to_have_text("controls")
            count = tabs.count()
            assert count >= 2  # the browser's first tab and the one opened above
            expect(console.locator(".live-mode")).to_have_text("Watching")
            expect(console.locator(".live-holder")).to_contain_text("In control:")
            frame = console.frame_locator(".live-frame")
            expect(frame.locator("#screen")).to_have_attribute("src", re.compile(r"^data:image/jpeg"), timeout=20_000)

            # Navigating through the API: the URL shown follows (the page is not reloaded).
            moved = client.post(
                f"/v1/browsers/{made.id}/pages/{page_id}/navigate", json={"url": f"{pages.url}/two.html"}
            )
            assert moved.status_code == 200, moved.text
            expect(console.locator(".live-url")).to_have_text(f"{pages.url}/two.html")
            expect(console.locator(".live-tabs li.current .tab-url")).to_have_text(f"{pages.url}/two.html")
            back = client.post(
                f"/v1/browsers/{made.id}/pages/{page_id}/navigate", json={"url": f"{pages.url}/controls.html"}
            )
            assert back.status_code == 200, back.text
            expect(console.locator(".live-url")).to_have_text(f"{pages.url}/controls.html")
            console.wait_for_timeout(500)  # a picture of the controls page
            console.screenshot(path=str(SHOTS / "console-live-watching.png"))

            # Take control, click the page's button (10-90% x 10-45% of the page) and type into its field.
            console.click(".live-take")
            expect(console.locator(".live-giveback")).to_be_visible()
            expect(console.locator(".live-mode")).to_have_text("You control the browser")
            expect(console.locator(".live-holder")).to_contain_text("a person", timeout=10_000)
            box = frame.locator("#screen").bounding_box()
            console.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.27)
            console.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.67)
            console.keyboard.type("hi you")
            console.keyboard.press("Enter")
            console.wait_for_timeout(800)
            console.screenshot(path=str(SHOTS / "console-live-control.png"))
            console.click(".live-giveback")
            expect(console.locator(".live-take")).to_be_enabled()
            expect(console.locator(".live-mode")).to_have_text("Watching")

            # The browser did what the person did.
            cdp = pw.chromium.connect_over_cdp(made.current_run.connections.cdp_url)
            try:
                shown = next(p for c in cdp.contexts for p in c.pages if p.url.endswith("/controls.html"))
                assert shown.evaluate(
                    "[document.getElementById('go').textContent, document.getElementById('field').value]"
                ) == [
                    "clicked 1",
                    "hi you",
                ]

                # The run's record credits it to the person, not to the script.
                def recorded() -> list[dict]:
                    return [e for e in events_of(client, run_id) if e["type"].startswith(("live.", "control."))]

                found = recorded()
                for _ in range(50):
                    if any(e["type"] == "live.handback" for e in found):
                        break
                    console.wait_for_timeout(200)
                    found = recorded()
                by_type = {}
                for event in found:
                    by_type.setdefault(event["type"], []).append(event)
                takeover = by_type["live.takeover"][0]
                assert takeover["actor"]["type"] == "human" and takeover["category"] == "human"
                assert takeover["data"]["previous"] == "agent"  # the run's CDP lease had it
                human_changes = [e for e in by_type["control.changed"] if e["data"].get("actor") == "human"]
                assert [e["data"]["holder"] for e in human_changes][:2] == ["human", "agent"]
                assert human_changes[0]["data"]["viewerId"] == takeover["actor"]["id"]
                inputs = [(e["data"]["action"], e["actor"]["type"]) for e in by_type["live.input"]]
                assert inputs.count(("click", "human")) == 2, inputs
                typed = [e["data"] for e in by_type["live.input"] if e["data"]["action"] == "type"]
                assert sum(d["chars"] for d in typed) == len("hi you") and "text" not in str(typed)
                assert ("key", "human") in inputs
                assert by_type["live.handback"][0]["data"]["reason"] == "handback"

                # While this Playwright client holds the browser over CDP, Take control is refused and
                # the page says why, in the server's words.
                console.click(".live-take")
                refusal = console.locator(".live-refusal")
                expect(refusal).to_be_visible(timeout=10_000)
                expect(refusal).to_contain_text("Take control was refused")
                expect(refusal).to_contain_text("controlled by a CDP client")
                expect(refusal).to_contain_text("Held by a script (CDP client, task or API call)")
                # The lease's end is said once (the server's message names it in UTC), not twice.
                assert refusal.inner_text().count("until") <= 1, refusal.inner_text()
                expect(console.locator(".live-take")).to_be_visible()
                expect(console.locator(".live-giveback")).to_be_hidden()
                console.screenshot(path=str(SHOTS / "console-live-refused.png"))
                console.screenshot(path=str(SHOTS / "polish-live-refused.png"))
                refused = [e for e in events_of(client, run_id) if e["type"] == "live.takeover_refused"]
                assert refused and refused[-1]["actor"]["type"] == "human"
                assert refused[-1]["data"]["holderKind"] == "connection"
            finally:
                cdp.close()

            # Once it lets go (the server sees its socket close a moment later), the same button takes
            # control; a person would click again, and so does the test.
            deadline = time.monotonic() + 30
            while True:
                console.click(".live-take")
                try:
                    expect(console.locator(".live-giveback")).to_be_visible(timeout=3_000)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
            expect(console.locator(".live-refusal")).to_be_hidden()
            console.click(".live-giveback")
            expect(console.locator(".live-take")).to_be_enabled()
        assert violations == [], violations
    finally:
        console.context.close()
        try:
            sdk.browsers.delete(made.id)
        except NotFoundError:
            pass

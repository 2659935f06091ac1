"""The console's runs page and run page, in headless Chromium against a real server: a Playwright client
drives a browser over CDP through two pages (a failing fetch, a console.error), the browser stops, and the
run is opened in the console: it is listed with what it did, its page plays the recording, a network row
seeks the video to that request's moment, the console error is on the timeline, and a run with thousands
of events stays a page of a few dozen rows."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from datetime import datetime

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import chromium_pids, profile_fragment

CURRENT = {"BCTRL-Version": "2026-10-03"}
SHOTS = "/tmp/shots"


def _wait(check, timeout: float = 30.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


def _events(http: httpx.Client, run_id: str) -> list[dict]:
    out, cursor = [], None
    while True:
        query = {"run": run_id, "order": "asc", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/events", params=query).json()
        out += page["data"]
        if not page.get("hasMore"):
            return out
        cursor = page["nextCursor"]


@pytest.fixture
def story(live, pages):
    """A browser driven through two pages and 3,000 console lines over CDP, then stopped: its run id."""
    http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}", **CURRENT}, timeout=60)
    made = http.post("/v1/browsers", json={"name": f"runs-{uuid.uuid4().hex[:8]}"})
    assert made.status_code in (200, 201), made.text
    browser = made.json()
    try:
        browser = _wait(lambda: (b := http.get(f"/v1/browsers/{browser['id']}").json())["currentRun"] and b)
        run = browser["currentRun"]
        run = _wait(lambda: (r := http.get(f"/v1/runs/{run['id']}").json())["connections"] and r)
        with sync_playwright() as pw:
            remote = pw.chromium.connect_over_cdp(run["connections"]["cdpUrl"])
            # The browser's own tab (the one its recording shows).
            context = remote.contexts[0]
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(f"{pages.url}/one.html")
            page.wait_for_timeout(1500)
            page.click("#next")
            page.wait_for_url("**/two.html")
            page.wait_for_timeout(1200)
            # Many events: the run page must page them in and stay a short list of rows.
            page.evaluate("() => { for (let i = 0; i < 3000; i++) console.log('line ' + i); }")
            page.wait_for_timeout(800)
            remote.close()
        stopped = http.post(f"/v1/browsers/{browser['id']}/stop")
        assert stopped.status_code in (200, 202), stopped.text
        _wait(lambda: http.get(f"/v1/runs/{run['id']}").json()["status"] in ("ended", "failed"))
        # The video is made after the run ends.
        _wait(
            lambda: [
                r for r in http.get(f"/v1/runs/{run['id']}/recordings").json()["data"] if r["status"] == "succeeded"
            ],
            60,
        )
        yield run["id"], http
    finally:
        http.post(f"/v1/browsers/{browser['id']}/stop")
        http.delete(f"/v1/browsers/{browser['id']}")
        http.close()


def test_a_run_in_the_console_lists_plays_seeks_and_shows_its_console_error(live, story):
    run_id, http = story
    events = _events(http, run_id)
    run = http.get(f"/v1/runs/{run_id}").json()
    assert run["stats"]["pagesVisited"] == 2 and run["stats"]["errors"] >= 3, run["stats"]
    started = datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00")).timestamp()
    requests = {e["data"]["url"].rsplit("/", 1)[1]: e for e in events if e["type"] == "network.request"}
    recording = http.get(f"/v1/runs/{run_id}/recordings").json()["data"][0]

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1440, "height": 1000})
        failures: list[str] = []
        page.on("pageerror", lambda e: failures.append(str(e)))
        page.on("console", lambda m: failures.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{live.url}/")
        page.fill("#key", live.api_key)
        page.click("#sign-in-form button[type=submit]")
        expect(page.locator("#nav")).to_be_visible()
        page.goto(f"{live.url}/#/runs")

        # The runs page: the run is listed with its pages, requests and errors, and a thumbnail.
        row = page.locator(f"tr[data-run-id='{run_id}']")
        expect(row).to_be_visible(timeout=15000)
        expect(row.locator("td.runs-pages")).to_have_text("2")
        assert int(row.locator("td.runs-errors").inner_text()) >= 3
        expect(row.locator("img.runs-thumb.loaded")).to_have_count(1, timeout=10000)
        # Filters are in the hash: failed runs only leaves this ended one out.
        page.select_option("#runs-status", "failed")
        expect(page).to_have_url(f"{live.url}/#/runs?status=failed")
        expect(page.locator(f"tr[data-run-id='{run_id}']")).to_have_count(0)
        page.select_option("#runs-status", "ended")
        expect(page.locator(f"tr[data-run-id='{run_id}']")).to_be_visible()
        page.screenshot(path=f"{SHOTS}/console-runs.png", full_page=True)

        # The run's page: the video plays the recording.
        page.locator(f"tr[data-run-id='{run_id}']").click()
        expect(page).to_have_url(f"{live.url}/#/runs/{run_id}")
        video = page.locator("video.run-video")
        expect(video).to_have_count(1, timeout=15000)
        page.wait_for_function("() => document.querySelector('video.run-video').readyState >= 1", timeout=15000)
        # All events paged in (3,000 and more), yet only the rows in view exist.
        page.wait_for_function(
            "(n) => /^[\\d,]+ events$/.test(document.querySelector('.run-load').textContent) &&"
            " Number(document.querySelector('.run-load').textContent.split(' ')[0].replace(/,/g, '')) >= n",
            arg=len(events),
            timeout=30000,
        )
        assert page.locator(".run-row").count() < 80
        # The header counts what the timeline shows: this run was driven over CDP, so its commands are
        # counted there (not the "0" of before the events came), and it names the browser, not its id.
        commands = sum(e["data"].get("total", 0) for e in events if e["type"] == "connection.command")
        assert commands > 0
        facts = page.locator(".run-facts")
        expect(facts).to_contain_text(f"{commands:,} CDP commands")
        expect(facts.locator("a.run-browser")).to_have_text(
            http.get(f"/v1/browsers/{run['resourceId']}").json()["name"]
        )
        page.screenshot(path=f"{SHOTS}/polish-run.png")

        # Clicking a network row seeks the video to that request's moment.
        duration = page.evaluate("() => document.querySelector('video.run-video').duration")
        lead = max(0.0, recording["durationMs"] / 1000 - duration)  # the video starts at the first frame
        page.click(".run-chips .chip[data-lane=network]")
        for name in ("two.html", "one.html"):
            at = datetime.fromisoformat(requests[name]["time"].replace("Z", "+00:00")).timestamp() - started
            page.locator(".run-row.lane-network", has_text=name).first.click()
            page.wait_for_function(
                "(want) => Math.abs(document.querySelector('video.run-video').currentTime - want) < 0.6",
                arg=max(0.0, at - lead),
                timeout=5000,
            )
        assert page.evaluate("() => document.querySelector('video.run-video').currentTime") < max(0.0, at - lead) + 0.6

        # The console error is on the timeline (and among the errors).
        page.click(".run-chips .chip[data-lane=console]")
        page.fill(".run-find", "something went wrong")
        error_row = page.locator(".run-row.lane-console.sev-error", has_text="something went wrong")
        expect(error_row).to_have_count(1)
        page.fill(".run-find", "")
        page.click(".run-chips .chip[data-lane=all]")
        expect(page.locator(".run-trace .run-span").first).to_be_visible()
        page.screenshot(path=f"{SHOTS}/console-run.png", full_page=True)
        page.click(".run-chips .chip[data-lane=errors]")
        expect(page.locator(".run-row.sev-error", has_text="boom from page one")).to_have_count(1)
        page.click(".run-chips .chip[data-lane=console]")
        page.locator(".run-list").evaluate("(el) => { el.scrollTop = el.scrollHeight / 2; }")
        page.wait_for_timeout(200)
        expect(page.locator(".run-row", has_text="line 1").first).to_be_visible()
        assert page.locator(".run-row").count() < 80
        page.screenshot(path=f"{SHOTS}/console-run-many-events.png", full_page=True)
        assert not failures, failures

        # A run id that names no run: the server's words, and no "Loading" left above them.
        page.goto(f"{live.url}/#/runs/{uuid.uuid4()}")
        expect(page.locator("#page [role=alert]")).to_be_visible()
        expect(page.locator("#page [role=alert]")).not_to_be_empty()
        expect(page.locator("#page")).not_to_contain_text("Loading")
        assert page.locator("#page a", has_text="Runs").count() == 1
        page.screenshot(path=f"{SHOTS}/polish-run-not-found.png")
        chromium.close()


def test_a_running_run_is_live_and_its_page_says_when_the_browser_dies(live, pages):
    http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}", **CURRENT}, timeout=60)
    browser = http.post("/v1/browsers", json={"name": f"dies-{uuid.uuid4().hex[:8]}"}).json()
    try:
        browser = _wait(lambda: (b := http.get(f"/v1/browsers/{browser['id']}").json())["currentRun"] and b)
        run = _wait(lambda: (r := http.get(f"/v1/runs/{browser['currentRun']['id']}").json())["connections"] and r)
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{live.url}/")
            page.fill("#key", live.api_key)
            page.click("#sign-in-form button[type=submit]")
            expect(page.locator("#nav")).to_be_visible()
            page.goto(f"{live.url}/#/runs/{run['id']}")
            page.wait_for_function("() => document.querySelector('#page > div')?.dataset.ready === '1'")
            expect(page.locator("img.run-frame")).to_have_count(1)
            # What the browser does now arrives on the open page through the run's stream.
            remote = pw.chromium.connect_over_cdp(run["connections"]["cdpUrl"])
            context = remote.contexts[0]
            tab = context.pages[0] if context.pages else context.new_page()
            tab.goto(f"{pages.url}/two.html")
            expect(page.locator(".run-row", has_text="arrived on page two")).to_have_count(1, timeout=15000)
            expect(page.locator(".run-load")).to_contain_text("live")
            remote.close()
            # The browser dies (its processes killed): the page says so.
            victims = chromium_pids(profile_fragment(live.data_dir, browser["id"]))
            assert victims, "the browser's processes were not found"
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            expect(page.locator(".run-banner")).to_contain_text("while this page was open", timeout=30000)
            page.screenshot(path=f"{SHOTS}/console-run-died.png", full_page=True)
            chromium.close()
    finally:
        http.post(f"/v1/browsers/{browser['id']}/stop")
        http.delete(f"/v1/browsers/{browser['id']}")
        http.close()

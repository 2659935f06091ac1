"""The run observer, seen from the API: what a Playwright session did becomes the run's events."""

from __future__ import annotations

from playwright.sync_api import sync_playwright

from tests.e2e.conftest import lease
from tests.e2e.test_cdp import events_of, wait_for


def test_observer_records_navigation_console_errors_network_and_downloads(live, runtime, pages, tmp_path):
    run_id = runtime["activeRunId"]
    with live.client() as client:
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            context = browser.contexts[0]
            page = context.new_page()
            page.goto(f"{pages.url}/one.html")
            page.wait_for_timeout(300)
            with page.expect_download() as info:
                page.click("#dl")
            download = info.value
            # The browser is isolated (its own uid and /tmp): like any remote client, this one gets the
            # file from the run's artifact, not from a path on the browser's host.
            assert download.suggested_filename == "report.csv"
            page.click("#next")
            page.wait_for_url("**/two.html")
            page.wait_for_load_state("load")
            page.close()
            browser.close()
        expected = b"id,amount\n1,10\n2,32\n"

        events = wait_for(
            lambda: (
                (e := events_of(client, run_id))
                and any(x["type"] == "download.completed" for x in e)
                and any(x["type"] == "page.closed" for x in e)
                and e
            ),
            timeout=15,
        )
        types = [e["type"] for e in events]
        page_events = [e for e in events if e["category"] in ("browser", "console", "network")]
        page_id = next(
            e["pageId"] for e in events if e["type"] == "page.navigated" and e["data"]["url"].endswith("/one.html")
        )
        assert all(e["source"] == "browser" for e in page_events)

        navigations = [e["data"]["url"] for e in events if e["type"] == "page.navigated" and e["pageId"] == page_id]
        assert [u.rsplit("/", 1)[1] for u in navigations if u.startswith("http")] == ["one.html", "two.html"]
        loads = [e for e in events if e["type"] == "page.load" and e["pageId"] == page_id]
        assert [e["data"]["url"].rsplit("/", 1)[1] for e in loads][-2:] == ["one.html", "two.html"]

        console = [(e["data"]["level"], e["data"]["text"]) for e in events if e["type"] == "console.message"]
        assert ("log", "hello from page one 42") in console
        assert ("warning", "careful") in console and ("error", "something went wrong") in console
        assert ("log", "arrived on page two") in console
        errors = [e["data"]["message"] for e in events if e["type"] == "page.error"]
        assert any("boom from page one" in m for m in errors)

        responses = {e["data"]["url"].rsplit("/", 1)[1]: e["data"] for e in events if e["type"] == "network.response"}
        assert responses["one.html"]["status"] == 200 and responses["one.html"]["method"] == "GET"
        assert responses["one.html"]["encodedBytes"] > 0 and responses["one.html"]["durationMs"] >= 0
        assert responses["two.html"]["resourceType"] == "Document"
        failed = [e["data"] for e in events if e["type"] == "network.failed"]
        assert any(f["url"] == "http://127.0.0.1:9/missing.json" and "ERR_" in f["errorText"] for f in failed)
        requests = [e["data"]["url"] for e in events if e["type"] == "network.request"]
        assert f"{pages.url}/one.html" in requests and "http://127.0.0.1:9/missing.json" in requests

        started = [e for e in events if e["type"] == "download.started"]
        completed = [e for e in events if e["type"] == "download.completed"]
        assert started[0]["data"]["suggestedFilename"] == "report.csv"
        assert completed[0]["data"]["captured"] is True
        assert "page.created" in types and "page.closed" in types
        assert types.index("page.created") < types.index("page.navigated")

        artifacts = client.get(f"/v1/runs/{run_id}/artifacts").json()["data"]
        report = next(a for a in artifacts if a["kind"] == "download")
        assert report["name"] == "report.csv" and report["sizeBytes"] == len(expected)
        assert client.get(report["downloadUrl"]).content == expected
        # Filters by page and by connection.
        on_page = events_of(client, run_id, pageId=page_id)
        assert on_page and all(e["pageId"] == page_id for e in on_page)
        assert {"page.navigated", "network.response", "console.message"} <= {e["type"] for e in on_page}
        lease_id = next(e["connectionId"] for e in events if e["type"] == "connection.created")
        by_connection = events_of(client, run_id, connectionId=lease_id)
        assert by_connection and all(e["connectionId"] == lease_id for e in by_connection)
        assert events_of(client, run_id, connectionId="not-a-uuid") == []
        # Events keep their sequence; no numbers are skipped or repeated.
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))


def test_a_request_cut_off_by_navigation_or_close_still_ends_with_its_status(live, runtime, pages):
    # Headers (a 404) arrive, the body never finishes, and the page moves on: the request must not
    # stay open in the run's events, and the status seen must not be lost.
    run_id = runtime["activeRunId"]
    with live.client() as client:
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            for step in ("navigate", "close"):
                page.goto(f"{pages.url}/two.html")
                page.evaluate(f"""() => {{ window.seen = 0;
                    fetch('/stall/404?{step}').then(r => {{ window.seen = r.status; return r.text(); }}); }}""")
                page.wait_for_function("window.seen === 404")
                if step == "navigate":
                    page.goto(f"{pages.url}/one.html")
                else:
                    page.close()
            browser.close()

        def cut_off():
            events = events_of(client, run_id)
            ended = {
                e["data"]["url"].rsplit("?", 1)[1]: e
                for e in events
                if e["type"] in ("network.failed", "network.response") and "/stall/" in (e["data"]["url"] or "")
            }
            return ended if len(ended) == 2 else None

        ended = wait_for(cut_off, timeout=15)
        for step in ("navigate", "close"):
            assert ended[step]["data"]["status"] == 404, ended[step]
        stalled = [e["type"] for e in events_of(client, run_id) if "/stall/" in (e["data"].get("url") or "")]
        # One request and one end each: Chromium's own late report (if any) is not a second end.
        assert sorted(stalled) == ["network.failed"] * 2 + ["network.request"] * 2, stalled


def test_a_new_tabs_first_navigation_is_recorded_once(live, runtime, pages):
    """Tabs opened with their URL (`Target.createTarget`, as Puppeteer and a page's links do) start loading
    at once, before the observer has attached to them and enabled their events: each tab's first
    navigation is still recorded, once."""
    run_id = runtime["activeRunId"]
    with live.client() as client:
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            session = browser.new_browser_cdp_session()
            opened = [f"{pages.url}/one.html?tab={i}" for i in range(6)]
            for address in opened:
                session.send("Target.createTarget", {"url": address})
            browser.close()

        def navigated():
            seen = [e["data"]["url"] for e in events_of(client, run_id, type="page.navigated")]
            return seen if all(u in seen for u in opened) else None

        seen = wait_for(navigated, timeout=15)
        assert sorted(u for u in seen if "?tab=" in u) == sorted(opened), seen

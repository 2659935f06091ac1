"""The console's Operations page in headless Chromium against a real server: after a few browser starts
it shows the capacity, the queue and a chart of the last hour's starts drawn as inline SVG; and
`GET /v1/operations`, the public route it reads, counts the account's starts and not another's."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.e2e.test_console_browsers import chromium, new_console, pw, sign_in  # noqa: F401 (fixtures)

SHOTS = Path("/tmp/shots")
CURRENT = {"BCTRL-Version": "2026-10-03"}


def operations(live) -> dict:
    with live.client() as client:
        answer = client.get("/v1/operations", headers=CURRENT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_operations_page_shows_capacity_and_the_starts_chart(chromium, live, sdk, other_client):  # noqa: F811
    before = operations(live)
    made = []
    try:
        for _ in range(2):
            browser = sdk.browsers.create(name=f"ops-{uuid.uuid4().hex[:8]}", wait=30)
            assert browser.status == "running", browser
            made.append(browser.id)
        after = operations(live)
        # Two more successful starts, each with a latency; the capacity counts the two running.
        assert after["starts"]["started"] == before["starts"]["started"] + 2
        assert after["starts"]["latency"]["maxSeconds"] > 0
        assert len(after["starts"]["buckets"]) == 60
        assert sum(b["started"] for b in after["starts"]["buckets"]) == after["starts"]["started"]
        assert after["capacity"]["used"] >= 2 and after["account"]["running"] >= 2
        assert after["capacity"]["total"] == after["capacity"]["slots"][0]["total"]
        # Another account's key sees the same deployment capacity but none of these starts.
        theirs = httpx.get(
            f"{live.url}/v1/operations",
            headers={**CURRENT, "Authorization": other_client._client_wrapper.get_headers()["Authorization"]},
        )
        assert theirs.status_code == 200, theirs.text
        assert theirs.json()["starts"]["started"] == 0
        assert httpx.get(f"{live.url}/v1/operations", headers=CURRENT).status_code == 401

        page = new_console(chromium, live)
        sign_in(page, live.api_key)
        expect(page.locator("#nav")).to_be_visible()
        page.click("#nav a[data-section=operations]")
        expect(page.locator("#page h1")).to_have_text("Operations")
        expect(page.locator("#capacity")).to_have_text(f"{after['capacity']['used']} / {after['capacity']['total']}")
        expect(page.locator("#starts-total")).to_have_text(str(after["starts"]["started"]))
        expect(page.locator("#queue")).to_have_text("0")
        chart = page.locator("svg.starts-chart")
        expect(chart).to_be_visible()
        bars = chart.locator("rect.bar.started")
        assert bars.count() >= 1
        assert bars.first.evaluate("r => r.getBBox().height") > 0
        expect(chart.locator("circle.latency").first).to_be_attached()
        # The cards fill their row: the last one ends where the row does.
        row_right = page.locator(".cards").evaluate("el => el.getBoundingClientRect().right")
        card_right = page.locator(".cards .card").last.evaluate("el => el.getBoundingClientRect().right")
        assert abs(row_right - card_right) < 2, (row_right, card_right)
        page.screenshot(path=str(SHOTS / "operations.png"), full_page=True)
        page.screenshot(path=str(SHOTS / "polish-operations.png"))
        assert page.violations == [], page.violations
        page.context.close()
    finally:
        for browser_id in made:
            sdk.browsers.delete(browser_id)

"""The run observer's per-run bounds (app/cdp/observer.py): past its caps, requests and console messages are
counted, not recorded; the first one past a cap is announced and the counts come when the run ends. A real
browser drives it (its caps lowered for the test), and the run's events are read through the API."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import async_playwright

from app.cdp import observer
from app.runtimes.models import Runtime
from tests.support import PageServer, eventually, started_runtime

PAGE = """<!doctype html><title>busy</title><script>
for (let i = 0; i < 12; i++) console.log("line " + i);
Promise.all([...Array(8).keys()].map((i) => fetch("/missing-" + i).catch(() => null)))
  .then(() => { console.error("all fetched"); window.done = true; });
</script>"""


async def _events(api, run_id: str) -> list[dict]:
    out, cursor = [], None
    while True:
        answer = await api.get(
            f"/v1/runs/{run_id}/events", params={"limit": 200, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        out += body["data"]
        cursor = body.get("nextCursor")
        if not body.get("hasMore") or not cursor:
            return out


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
async def test_past_its_caps_the_observer_counts_instead_of_recording(server, api, monkeypatch, tmp_path):
    monkeypatch.setattr(observer, "NETWORK_CAP", 4)
    monkeypatch.setattr(observer, "CONSOLE_CAP", 5)
    (tmp_path / "busy.html").write_text(PAGE)
    pages = PageServer(tmp_path)
    try:
        async with started_runtime(api) as runtime:
            run_id = runtime["connection"]["runId"]
            # The browser's own endpoint (the in-process server has no socket for the proxy).
            async with server.ctx.db.read() as s:
                ws_url = (await s.get(Runtime, uuid.UUID(runtime["id"]))).driver_state["wsUrl"]
            async with async_playwright() as pw:
                browser = await pw.chromium.connect_over_cdp(ws_url)
                page = await browser.contexts[0].new_page()
                await page.goto(f"{pages.url}/busy.html")
                await page.wait_for_function("window.done === true")
                await page.wait_for_timeout(300)
                await browser.close()

        async def ended() -> list[dict] | None:
            found = await _events(api, run_id)
            return found if any(e["type"] == "observer.dropped" for e in found) else None

        events = await eventually(ended, timeout=15)
    finally:
        pages.close()

    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    # At most NETWORK_CAP requests, each ending (response or failure) like any recorded request.
    requests = by_type.get("network.request", [])
    assert len(requests) == 4, [r["data"]["url"] for r in requests]
    ended_ids = {e["data"]["requestId"] for t in ("network.response", "network.failed") for e in by_type.get(t, [])}
    assert {r["data"]["requestId"] for r in requests} == ended_ids
    # Console messages and page errors share CONSOLE_CAP: the first five lines, not the rest.
    texts = [e["data"]["text"] for e in by_type.get("console.message", [])]
    assert texts == [f"line {i}" for i in range(5)]
    capped = sorted((e["data"]["kind"], e["data"]["cap"]) for e in by_type.get("observer.capped", []))
    assert capped == [("console", 5), ("network", 4)]
    [dropped] = by_type["observer.dropped"]
    # 12 lines and the error, 5 kept; the document and 8 fetches (and perhaps a favicon), 4 kept.
    assert dropped["data"]["console"] == 8
    assert dropped["data"]["network"] >= 5

"""Pages of a running browser in-process over both backends: an Idempotency-Key replays an open
(one page, not two), every operation is a run event of the API channel naming its key, the controller
is given back after each operation, and bad bodies are 400 naming the field."""

from __future__ import annotations

import uuid

from app.runtimes.models import Runtime
from tests.support import eventually

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def test_open_replays_records_events_and_gives_the_browser_back(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    base = f"/v1/browsers/{runtime['id']}/pages"

    before = await api.get(base, headers=CURRENT)
    assert before.status_code == 200, before.text
    first_ids = [p["id"] for p in before.json()["data"]["data"]]

    keyed = {**CURRENT, "Idempotency-Key": "open-once"}
    opened = await api.post(base, json={"url": "about:blank"}, headers=keyed)
    assert opened.status_code == 200, opened.text
    again = await api.post(base, json={"url": "about:blank"}, headers=keyed)
    assert again.headers.get("Idempotency-Replayed") == "true" and again.json() == opened.json()
    page = opened.json()["data"]
    assert page["object"] == "page" and page["active"] is True and page["runId"] == runtime["activeRunId"]
    listed = (await api.get(base, headers=CURRENT)).json()["data"]["data"]
    assert sorted(p["id"] for p in listed) == sorted([*first_ids, page["id"]])

    # Another request with the same key and another body is refused, and opens nothing.
    other = await api.post(base, json={"url": "about:blank", "activate": False}, headers=keyed)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency.mismatch"
    assert len((await api.get(base, headers=CURRENT)).json()["data"]["data"]) == len(listed)

    closed = await api.delete(f"{base}/{page['id']}", headers=CURRENT)
    assert closed.status_code == 200 and closed.json()["data"] == {
        "id": page["id"],
        "object": "page",
        "runId": runtime["activeRunId"],
        "deleted": True,
    }
    missing = await api.get(f"{base}/{page['id']}", headers=CURRENT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource.not_found"

    # Each operation is an event of the run, on the API channel, by an API key, about its page.
    events = (
        await api.get(
            "/v1/events", params={"run": runtime["activeRunId"], "channel": "api", "limit": 50}, headers=CURRENT
        )
    ).json()["data"]
    by_id = {e["id"]: e for e in events}
    for answer, kind in ((opened, "pages.opened"), (closed, "pages.closed")):
        event = by_id[answer.json()["eventId"]]
        assert event["type"] == kind and event["category"] == "page" and event["pageId"] == page["id"]
        assert event["actor"]["type"] == "api_key" and event["actor"]["id"]

    # The page's id is the one the run's own record of the browser uses (the observer's page.created).
    async def observed():
        answer = await api.get(
            "/v1/events", params={"run": runtime["activeRunId"], "type": "page.created"}, headers=CURRENT
        )
        return [e for e in answer.json()["data"] if e["pageId"] == page["id"]]

    assert (await eventually(observed))[0]["channel"] == "cdp"

    # The controller was given back after every operation (to the run's own connection, or nobody).
    async with server.ctx.db.read() as s:
        row = await s.get(Runtime, uuid.UUID(runtime["id"]))
    assert row.controller_kind != "api", (row.controller_kind, row.controller_id)


async def test_bad_bodies_name_the_field(api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    base = f"/v1/browsers/{runtime['id']}/pages"
    page_id = (await api.get(base, headers=CURRENT)).json()["data"]["data"][0]["id"]
    for path, body, field in (
        (base, {"url": "ftp://example.com/"}, "url"),
        (base, {"activate": "yes"}, "activate"),
        (f"{base}/{page_id}/navigate", {}, "url"),
        (f"{base}/{page_id}/navigate", {"url": "http://127.0.0.1/", "waitUntil": "idle"}, "waitUntil"),
        (f"{base}/{page_id}/navigate", {"url": "http://127.0.0.1/", "timeoutMs": 10**6}, "timeoutMs"),
        (f"{base}/{page_id}/screenshot", {"clip": {"x": 0, "y": 0, "width": 0, "height": 10}}, "clip.width"),
        (f"{base}/{page_id}/screenshot", {"fullpage": True}, "fullpage"),
        (f"{base}/{page_id}/pdf", {"scale": 3}, "scale"),
    ):
        answer = await api.post(path, json=body, headers=CURRENT)
        assert answer.status_code == 400, (path, body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "request.invalid"
        assert field in [f["field"] for f in error["details"]["fields"]], (body, error)

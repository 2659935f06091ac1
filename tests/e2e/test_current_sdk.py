"""The official client of today, unchanged: `from bctrl import Bctrl` (0.3), which sends
`BCTRL-Version: 2026-10-03`, against a real server process: browsers, their runs, saved state, errors."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from bctrl import AsyncBctrl
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

VERSION = "2026-10-03"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(exc) -> dict:
    """The current envelope's `error`, whether the SDK parsed the body into a model or kept the dict."""
    body = exc.value.body
    if isinstance(body, dict):
        return body["error"]
    return body.error.model_dump(by_alias=True)


def code_of(exc) -> str:
    return error_of(exc)["code"]


def set_cookie_and_visit(cdp_url: str, url: str, value: str) -> str:
    """Visit `url`, set a persistent cookie for it; the page's title."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url)
        page.click("#go")
        assert page.text_content("#status") == "clicked 1"
        context.add_cookies([{"name": "kept", "value": value, "url": url, "expires": time.time() + 3600}])
        title = page.title()
        browser.close()
    return title


def cookies_of(cdp_url: str, url: str) -> dict[str, str]:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        found = {c["name"]: c["value"] for c in browser.contexts[0].cookies(url)}
        browser.close()
    return found


def test_browser_lifecycle_by_name_with_playwright(client, browsers, pages):
    name = unique("lifecycle")
    created = client.browsers.create(
        name=name, wait=30, metadata={"team": "qa"}, viewport={"width": 1024, "height": 700}
    )
    browsers(created.id)
    assert created.object == "browser" and created.name == name and created.status == "running"
    assert created.viewport.width == 1024 and created.metadata == {"team": "qa"}
    run = created.current_run
    assert run.object == "run" and run.status == "active" and run.resource_id == created.id
    assert run.resource_type == "browser" and run.control.holder == "agent"  # the run's CDP lease holds it
    assert run.connections.cdp_url.startswith("ws://") and "/live?token=" in run.connections.live_view_url

    set_cookie_and_visit(run.connections.cdp_url, f"{pages.url}/index.html", "one")
    # The same URL on every read while the run is active.
    by_name = client.browsers.get(name)
    assert by_name.id == created.id and by_name.current_run.connections.cdp_url == run.connections.cdp_url

    listed = client.browsers.list(name=name)
    assert [b.id for b in listed.data] == [created.id] and listed.has_more is False
    assert created.id in [b.id for b in client.browsers.list(q=name.upper()[:12]).data]
    assert created.id in [b.id for b in client.browsers.list(status="running").data]
    assert created.id not in [b.id for b in client.browsers.list(status="idle").data]

    stopped = client.browsers.stop(name, wait=30)
    assert stopped.status == "idle" and stopped.current_run is None
    assert stopped.saved_state.status == "saved" and stopped.saved_state.size_bytes > 0
    ended = client.runs.get(run.id)
    assert ended.status == "ended" and ended.end_reason == "stopped" and ended.ended_at is not None
    assert ended.connections is None and ended.usage.runtime_seconds > 0

    runs = client.browsers.runs.list(created.id)
    assert [r.id for r in runs.data] == [run.id] and runs.data[0].status == "ended"
    assert run.id in [r.id for r in client.runs.list(resource_id=created.id, status="ended").data]

    renamed = client.browsers.update(created.id, name=name + "-b", timeout_seconds=600)
    assert renamed.name == name + "-b" and renamed.timeout_seconds == 600

    assert client.browsers.delete(created.id).deleted is True
    with pytest.raises(NotFoundError) as gone:
        client.browsers.get(created.id)
    assert code_of(gone) == "browser.not_found"
    # Its run stays readable until it is deleted itself.
    assert client.runs.get(run.id).status == "ended"
    assert client.runs.delete(run.id).deleted is True
    with pytest.raises(NotFoundError):
        client.runs.get(run.id)


def test_profile_state_survives_a_stop_and_start_until_discarded(client, browsers, pages):
    url = f"{pages.url}/index.html"
    created = client.browsers.create(name=unique("state"), wait=30)
    browsers(created.id)
    set_cookie_and_visit(created.current_run.connections.cdp_url, url, "from-run-1")
    client.browsers.stop(created.id, wait=30)

    second = client.browsers.start(created.id, wait=30)
    assert second.current_run.id != created.current_run.id
    assert cookies_of(second.current_run.connections.cdp_url, url).get("kept") == "from-run-1"

    discarded = client.browsers.stop(created.id, wait=30, discard_state=True)
    assert discarded.saved_state.status == "none"
    third = client.browsers.start(created.id, wait=30)
    assert "kept" not in cookies_of(third.current_run.connections.cdp_url, url)
    # Starting a running browser returns its current run, not a second one.
    assert client.browsers.start(created.id, wait=30).current_run.id == third.current_run.id


def test_a_corrupt_saved_state_starts_clean_and_says_so(live, client, browsers, pages):
    created = client.browsers.create(name=unique("corrupt"), wait=30)
    browsers(created.id)
    set_cookie_and_visit(created.current_run.connections.cdp_url, f"{pages.url}/index.html", "x")
    before = {p for p in live.data_dir.rglob("browser-state/*") if p.is_file()}
    client.browsers.stop(created.id, wait=30)
    archives = [p for p in live.data_dir.rglob("browser-state/*") if p.is_file() and p not in before]
    assert len(archives) == 1
    archives[0].write_bytes(b"not a tar archive")

    restarted = client.browsers.start(created.id, wait=30)
    assert restarted.status == "running" and restarted.saved_state.status == "none"
    assert any(w.type == "browser.state_warning" and "started clean" in w.message for w in restarted.warnings)


def test_errors_map_to_the_sdk_exceptions(live, client, browsers):
    name = unique("errors")
    first = client.browsers.create(name=name, wait=30)
    browsers(first.id)
    with pytest.raises(ConflictError) as taken:
        client.browsers.create(name=name)
    assert code_of(taken) == "browser.name_conflict"
    assert error_of(taken)["reasonClass"] == "conflict"
    with pytest.raises(NotFoundError) as unknown:
        client.browsers.get("no-such-browser")
    assert code_of(unknown) == "browser.not_found"
    with pytest.raises(BadRequestError) as refused:
        client.browsers.create(name=unique("gpu"), gpu=True)
    assert code_of(refused) == "browser.option_unsupported" and "gpu" in error_of(refused)["message"]
    # A location this deployment does not have: refused, naming the ones it offers, nothing created.
    with pytest.raises(BadRequestError) as nowhere:
        client.browsers.create(name=unique("mars"), location="mars-1")
    assert code_of(nowhere) == "browser.option_unsupported"
    assert "auto, local" in error_of(nowhere)["message"]
    assert client.browsers.list(q="mars").data == []
    # `local` (the one location here) and `auto` are taken, and listed by where the browser is.
    assert first.location == "local" and [b.id for b in client.browsers.list(location="local", q=name).data] == [
        first.id
    ]
    assert client.browsers.list(location="eu-1", q=name).data == []
    with pytest.raises(ConflictError) as active:
        client.runs.delete(first.current_run.id)
    assert code_of(active) == "run.active"

    client.browsers.stop(first.id, wait=30)
    with pytest.raises(ConflictError) as idle:
        client.browsers.stop(first.id)
    assert code_of(idle) == "browser.not_running"

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}"}) as raw:
        malformed = raw.get("/v1/browsers", headers={"BCTRL-Version": "latest"})
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == "request.version_unsupported"
        # A later date than we know is served as the nearest generation, and the response says which.
        later = raw.get(f"/v1/browsers/{first.id}", headers={"BCTRL-Version": "2027-01-01"})
        assert later.status_code == 200 and later.headers["BCTRL-Version"] == VERSION
        # Without the header, a shared path keeps its flat shape and envelope.
        flat = raw.get(f"/v1/runs/{first.current_run.id}")
        assert flat.json()["runtimeId"] == first.id and "bctrl-version" not in flat.headers
        assert raw.get("/v1/runs/nope").json()["code"] == "run.not_found"
        current = raw.get(f"/v1/runs/{first.current_run.id}", headers={"BCTRL-Version": VERSION})
        assert current.json()["resourceId"] == first.id and current.json()["status"] == "ended"
        webdriver = raw.post(f"/v1/webdriver/{first.current_run.id}/session", headers={"BCTRL-Version": VERSION})
        assert webdriver.status_code == 501 and webdriver.json()["error"]["code"] == "runtime.webdriver_unavailable"


def test_a_name_in_two_spaces_needs_its_space(client, browsers):
    """Names are unique per space, so a lookup across the account's spaces cannot tell which browser a
    name shared by two spaces means (409), and one within a space can."""
    name = unique("twice")
    first = client.browsers.create(name=name, wait=30)
    browsers(first.id)
    elsewhere = client.spaces.create(name=unique("elsewhere"))
    second = client.browsers.create(name=name, space_id=elsewhere.id, wait=30)
    browsers(second.id)
    # The contract lists no 409 for a get, so the SDK raises its base ApiError, status and body intact.
    with pytest.raises(ApiError) as ambiguous:
        client.browsers.get(name)
    assert ambiguous.value.status_code == 409
    assert code_of(ambiguous) == "resource.name_ambiguous" and error_of(ambiguous)["details"]["name"] == name
    assert client.browsers.get(name, space_id=elsewhere.id).id == second.id
    assert client.browsers.get(name, space_id=first.space_id).id == first.id


def test_create_without_wait_answers_once_admitted(client, browsers):
    created = client.browsers.create(name=unique("nowait"))
    browsers(created.id)
    assert created.status == "running" and created.current_run.status in ("starting", "active")
    running = client.browsers.get(created.id, wait=30)
    assert running.current_run.status == "active" and running.current_run.connections is not None


def test_async_client_flow(live):
    async def flow() -> None:
        client = AsyncBctrl(token=live.api_key, base_url=live.url)
        created = await client.browsers.create(name=unique("async"), wait=30)
        try:
            assert created.current_run.connections.cdp_url.startswith("ws://")
            stopped = await client.browsers.stop(created.id, wait=30)
            assert stopped.status == "idle"
            page = await client.browsers.list(name=created.name)
            assert [b.id for b in page.data] == [created.id]
        finally:
            await client.browsers.delete(created.id)

    asyncio.run(flow())

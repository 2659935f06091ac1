"""Control of a browser through the official client unchanged (`from bctrl import Bctrl`, 0.3) against a
real server: who holds it (`agent`, `human`, `none`) with a growing epoch, a person's take-over and
hand-back through an input viewer, a stale epoch refused, the same lock as CDP clients, every change a
run event and a `control.changed` frame, and revoking every connection of the current run."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from bctrl._generated.errors import ConflictError, ForbiddenError, NotFoundError
from bctrl._generated.types import ViewScopeRuntimeInput
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique

VERSION = "2026-10-03"


def input_viewer(live, client, browser, views: list | None = None) -> str:
    """An input viewer of the browser's current run, minted through a view with control (which takes
    control as it is minted); its id as the run's `live.created` event names it."""
    view = client.views.create(scope=ViewScopeRuntimeInput(runtime_id=browser.id), control=True)
    if views is not None:
        views.append(view.id)
    headers = {"Authorization": f"Bearer {view.token}", "BCTRL-Version": VERSION}
    with httpx.Client(base_url=live.url, headers=headers) as page:
        minted = page.post("/view/live", json={"runId": browser.current_run.id, "control": True})
        assert minted.status_code == 200, minted.text
    created = client.events.list(run=browser.current_run.id, type=["live.created"]).data
    return next(e.data["viewerId"] for e in created if e.data.get("control") == "input")


def control_frames(live, run_id: str, count: int, into: list) -> threading.Thread:
    """Collect the first `count` control.changed frames of the run stream (in a thread)."""

    def follow() -> None:
        headers = {"Authorization": f"Bearer {live.api_key}", "BCTRL-Version": VERSION}
        with httpx.Client(base_url=live.url, headers=headers, timeout=30) as http:
            with http.stream("GET", f"/v1/runs/{run_id}/stream", params={"include": "events"}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        frame = json.loads(line[5:])
                        if frame.get("type") == "control.changed":
                            into.append(frame)
                            if len(into) >= count:
                                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def test_a_person_takes_and_hands_back_control_under_the_lock(live, client, browsers):
    browser = client.browsers.create(name=unique("control"), wait=30)
    browsers(browser.id)
    run_id = browser.current_run.id
    before = client.browsers.control.get(browser.id)
    assert before.holder == "agent" and before.run_id == run_id  # the run's CDP URL holds it, unattached

    views: list = []
    viewer = input_viewer(live, client, browser, views)
    held = client.browsers.control.get(browser.id)
    assert held.holder == "human" and held.epoch > before.epoch

    # A CDP client cannot attach while a person holds the browser.
    with sync_playwright() as pw, pytest.raises(PlaywrightError):
        pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url, timeout=10_000)

    # A stale epoch is refused before anything changes.
    with pytest.raises(ConflictError) as stale:
        client.browsers.control.release(browser.id, viewer_id=viewer, expected_epoch=held.epoch - 1)
    assert code_of(stale) == "runtime.stale_generation"
    assert client.browsers.control.get(browser.id).epoch == held.epoch

    frames: list = []
    follower = control_frames(live, run_id, 2, frames)
    released = client.browsers.control.release(browser.id, viewer_id=viewer, expected_epoch=held.epoch)
    assert released.status == "succeeded" and released.data.holder == "agent" and released.event_id
    assert released.data.epoch > held.epoch
    # Releasing what it no longer holds: refused, nothing changes.
    with pytest.raises(ConflictError) as not_held:
        client.browsers.control.release(browser.id, viewer_id=viewer)
    assert code_of(not_held) == "viewer.control_not_held"

    retaken = client.browsers.control.take(browser.id, viewer_id=viewer, expected_epoch=released.data.epoch)
    assert retaken.data.holder == "human" and retaken.data.epoch > released.data.epoch
    follower.join(20)
    assert [f["holder"] for f in frames[:2]] == ["agent", "human"]
    assert frames[0]["epoch"] < frames[1]["epoch"]

    # Every change is a run event, in order, with growing epochs; the canonical ids are among them.
    changes = client.events.list(run=run_id, type=["control.changed"], order="asc").data
    epochs = [e.data["epoch"] for e in changes]
    assert epochs == sorted(epochs) and len(changes) >= 4
    assert {released.event_id, retaken.event_id} <= {e.id for e in changes}
    assert all(e.category == "control" for e in changes)

    # The hold ends with the viewer: deleting the view it came from gives control back at once.
    client.views.delete(views[0])
    assert client.browsers.control.get(browser.id).holder == "agent"
    with pytest.raises(ForbiddenError):
        client.browsers.control.take(browser.id, viewer_id=viewer)

    # A CDP client attaches; then a person's take is refused with the holder named.
    viewer = input_viewer(live, client, browser)
    client.browsers.control.release(browser.id, viewer_id=viewer)
    with sync_playwright() as pw:
        attached = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        try:
            with pytest.raises(ConflictError) as busy:
                client.browsers.control.take(browser.id, viewer_id=viewer)
            assert code_of(busy) == "browser.control_held"
            assert "CDP client" in busy.value.body["error"]["message"] or "connection" in str(busy.value.body)
        finally:
            attached.close()


def test_viewer_refusals(live, client, browsers):
    browser = client.browsers.create(name=unique("control-refused"), wait=30)
    browsers(browser.id)
    other = client.browsers.create(name=unique("control-other"), wait=30)
    browsers(other.id)
    foreign = input_viewer(live, client, other)

    with pytest.raises(NotFoundError) as unknown:
        client.browsers.control.take(browser.id, viewer_id="0190f1c2-0000-7000-8000-000000000000")
    assert code_of(unknown) == "viewer.not_found"
    with pytest.raises(ForbiddenError) as elsewhere:
        client.browsers.control.take(browser.id, viewer_id=foreign)
    assert code_of(elsewhere) == "viewer.control_forbidden"
    assert client.browsers.control.get(browser.id).holder == "agent"

    client.browsers.stop(browser.id, wait=30)
    with pytest.raises(ConflictError) as stopped:
        client.browsers.control.get(browser.id)
    assert code_of(stopped) == "browser.not_running"


def test_revoke_ends_every_connection_of_the_run(client, browsers):
    browser = client.browsers.create(name=unique("revoke"), wait=30)
    browsers(browser.id)
    old_url = browser.current_run.connections.cdp_url
    with sync_playwright() as pw:
        attached = pw.chromium.connect_over_cdp(old_url)
        page = attached.contexts[0].pages[0] if attached.contexts[0].pages else attached.contexts[0].new_page()
        renewed = client.browsers.connections.revoke(browser.id)
        new_url = renewed.current_run.connections.cdp_url
        assert new_url != old_url and renewed.current_run.id == browser.current_run.id
        # The open socket is closed by the server: the client's next command fails.
        deadline = time.monotonic() + 10
        with pytest.raises(PlaywrightError):
            while time.monotonic() < deadline:
                page.evaluate("1")
                time.sleep(0.1)
        with pytest.raises(PlaywrightError):
            pw.chromium.connect_over_cdp(old_url, timeout=10_000)
        fresh = pw.chromium.connect_over_cdp(new_url)
        page = fresh.contexts[0].pages[0] if fresh.contexts[0].pages else fresh.contexts[0].new_page()
        assert page.evaluate("1 + 1") == 2
        fresh.close()
    revoked = client.events.list(run=browser.current_run.id, type=["connection.revoked"]).data
    assert revoked and all(e.data.get("reason") == "revoke_all" for e in revoked)

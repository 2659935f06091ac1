"""The official Python SDK's original client pointed at our server: `from bctrl.legacy import Bctrl` in
bctrl 0.3, which ships the 0.2 client's modules unchanged (in 0.3, `from bctrl import Bctrl` is the new client)."""

from __future__ import annotations

import pytest
from bctrl.legacy import Bctrl, BctrlConflictError, BctrlNotFoundError, BctrlValidationError
from playwright.sync_api import sync_playwright


@pytest.fixture
def sdk(live):
    return Bctrl(api_key=live.api_key, base_url=live.url)


def test_sdk_spaces_and_runtime_lifecycle(sdk, stop_afterwards):
    created = sdk.spaces.create(name="sdk-space")
    assert created["name"] == "sdk-space"
    assert created["id"] in [s["id"] for s in sdk.spaces.list()["data"]]
    assert sdk.spaces.get(created["id"])["id"] == created["id"]

    runtime = sdk.runtimes.create(type="browser", name="sdk-rt", space_id=created["id"])
    stop_afterwards(runtime["id"])
    assert runtime["status"] == "stopped"
    started = sdk.runtimes.start(runtime["id"])
    assert started["status"] == "active" and started["runId"]
    assert started["connection"]["cdpUrl"].startswith("ws://")
    got = sdk.runtimes.get(runtime["id"], include="connection")
    assert got["status"] == "active" and got["activeRunId"] == started["runId"]
    assert got["connection"]["cdpUrl"] == started["connection"]["cdpUrl"]
    stopped = sdk.runtimes.stop(runtime["id"])
    assert stopped["status"] == "stopped" and stopped["stopped"] is True
    assert sdk.runs.get(started["runId"])["status"] == "completed"
    assert sdk.runs.get(started["runId"], include="connection")["connection"] is None

    with pytest.raises(BctrlNotFoundError):
        sdk.runtimes.get("00000000-0000-7000-8000-000000000000")
    with pytest.raises(BctrlValidationError):
        sdk.spaces.create(name="")


def test_sdk_started_browser_context_manager(sdk, pages):
    with sdk.runtimes.started_browser(name="ctx-browser") as rt:
        run_id = rt.run_id
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(rt.cdp_url)
            page = browser.contexts[0].new_page()
            page.goto(f"{pages.url}/index.html")
            page.click("#go")
            assert page.text_content("#status") == "clicked 1"
            browser.close()
        assert sdk.runtimes.get(rt.id)["status"] == "active"
        # The run's connection holds the controller lock: a second controller is refused.
        with pytest.raises(BctrlConflictError) as busy:
            sdk._http.request(
                "POST",
                f"/spaces/{sdk.runtimes.get(rt.id)['spaceId']}/runtimes/{rt.id}/connections",
                json_body={"protocol": "cdp"},
            )
        assert busy.value.code == "runtime.controller_busy"
    assert sdk.runtimes.get(rt.id)["status"] == "stopped"
    events = sdk.runs.events.list(run_id, limit=200)["data"]
    types = [e["type"] for e in events]
    # The control plane writes its lifecycle events in the transaction of the change they describe, so
    # they are in order. Events of other sources land in between as they come: the observer's (its own
    # CDP session writes the first tab's page.created once it is attached, possibly before the lease's
    # connection.created) and the recording's artifact.created (encoded as the run ends, possibly after
    # runtime.stopped). The observer only starts once the runtime is active.
    assert types[:2] == ["runtime.starting", "runtime.active"]
    lifecycle = [
        e["type"] for e in events if e["source"] == "control-plane" and e["category"] in ("runtime", "connection")
    ]
    assert lifecycle[:3] == ["runtime.starting", "runtime.active", "connection.created"]
    assert "connection.attached" in types and "connection.command" in types
    assert lifecycle[-1] == "runtime.stopped"


def test_sdk_runs_stream_ends_with_run_ended(sdk):
    runtime = sdk.runtimes.create(type="browser", start=True)
    run_id = runtime["connection"]["runId"]
    sdk.runtimes.stop(runtime["id"])
    frames = list(sdk.runs.stream(run_id))
    names = [f.get("event") for f in frames]
    assert names[-1] == "run.ended" and frames[-1]["data"]["status"] == "completed"
    types = [f["data"]["type"] for f in frames if f.get("event") == "run.event"]
    assert types[0] == "runtime.starting" and "runtime.stopped" in types
    # Resuming from an id returns only what came after it: the same events, and after them only ones
    # written since (the recording's artifact.created can land after the first stream ended).
    later = list(sdk.runs.stream(run_id, cursor=frames[1]["id"]))
    resumed = [f["data"]["seq"] for f in later if f.get("event") == "run.event"]
    expected = [f["data"]["seq"] for f in frames[2:] if f.get("event") == "run.event"]
    assert resumed[: len(expected)] == expected
    assert all(seq > expected[-1] for seq in resumed[len(expected) :])


def test_sdk_deletes_runtimes_and_manages_stored_files(sdk):
    # The routes that now resolve their runtime or file in a path dependency, through the client unchanged.
    space = sdk.spaces.create(name="sdk-files")
    runtime = sdk.runtimes.create(type="browser", name="sdk-del", space_id=space["id"])
    assert sdk.runtimes.delete(runtime["id"])["deleted"] is True
    with pytest.raises(BctrlNotFoundError):
        sdk.runtimes.get(runtime["id"])
    with pytest.raises(BctrlNotFoundError):
        sdk.runtimes.delete(runtime["id"])

    uploaded = sdk.files.upload(
        file=b"id,amount\n1,10\n", filename="report.csv", path="in/report.csv", space_id=space["id"]
    )
    listed = sdk.files.list(spaceId=space["id"], prefix="in/")["data"]
    assert [f["id"] for f in listed] == [uploaded["id"]]
    assert sdk.files.get(uploaded["id"])["path"] == "in/report.csv"
    assert sdk.files.content(uploaded["id"]) == b"id,amount\n1,10\n"
    assert sdk.files.delete(uploaded["id"])["deleted"] is True
    with pytest.raises(BctrlNotFoundError):
        sdk.files.get(uploaded["id"])
    assert sdk.files.list(spaceId=space["id"])["data"] == []

"""Recordings through the official 0.3 client, unchanged, against a server process: a browser's run is
recorded while it runs, exported when it stops, downloadable by its signed link without the API key,
and still readable after the browser is deleted."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from bctrl._generated.errors import ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, error_of, unique


def visit(cdp_url: str, url: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url)
        page.click("#go")
        browser.close()


def settled(client, run_id: str, timeout: float = 90.0):
    """The run's recording once its export has finished (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        recording = client.runs.recordings.get(run_id, run_id)
        if recording.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return recording
        time.sleep(0.25)


def test_a_recorded_run_from_capture_to_download(live, client, browsers, pages):
    created = client.browsers.create(name=unique("recorded"), wait=30)
    browsers(created.id)
    run = created.current_run
    assert run.recording.enabled is True
    visit(run.connections.cdp_url, f"{pages.url}/index.html")

    capturing = client.browsers.recording.get(created.id)
    assert capturing.id == run.id and capturing.run_id == run.id and capturing.kind == "whole_run"
    assert capturing.status in ("queued", "running") and capturing.download_url is None
    assert capturing.partial is None and capturing.ended_at is None
    listed = client.runs.recordings.list(run.id)
    assert [r.id for r in listed.data] == [run.id] and listed.has_more is False

    client.browsers.stop(created.id, wait=30)
    with pytest.raises(ConflictError) as idle:
        client.browsers.recording.get(created.id)
    assert code_of(idle) == "browser.not_running"
    assert error_of(idle)["details"]["latestRunId"] == run.id

    # The browser goes; its run and the recording stay.
    client.browsers.delete(created.id)
    recording = settled(client, run.id)
    assert recording.status == "succeeded", recording
    assert recording.partial is False and recording.ended_at is not None and recording.duration_ms > 0
    assert recording.size_bytes > 0 and len(recording.sha256) == 64
    assert recording.download_expires_at is not None and recording.download_url.startswith(live.url)
    left = recording.download_expires_at.timestamp() - time.time()
    assert 200 < left <= 301, left

    # The link works without the API key and gives the bytes the recording describes: a WebM video.
    got = httpx.get(recording.download_url, timeout=60)
    assert got.status_code == 200, got.text
    assert len(got.content) == recording.size_bytes and hashlib.sha256(got.content).hexdigest() == recording.sha256
    assert got.content[:4] == b"\x1a\x45\xdf\xa3" and got.headers["content-type"].startswith("video/webm")
    partial = httpx.get(recording.download_url, headers={"Range": "bytes=0-9"}, timeout=60)
    assert partial.status_code == 206 and partial.content == got.content[:10]
    # A link altered, or used as another kind of token, is refused.
    token = recording.download_url.split("token=", 1)[1]
    for bad in (token + "x", token[:-2], ""):
        refused = httpx.get(f"{live.url}/v1/recordings/download", params={"token": bad}, timeout=30)
        assert refused.status_code == 401 and refused.json()["code"] == "viewer.token_invalid", refused.text

    # Deleting the run deletes its recording: the link stops working.
    client.runs.delete(run.id)
    gone = httpx.get(recording.download_url, timeout=30)
    assert gone.status_code == 404, gone.text
    with pytest.raises(NotFoundError):
        client.runs.recordings.list(run.id)


def test_an_unrecorded_run_has_no_recording(client, browsers):
    created = client.browsers.create(name=unique("unrecorded"), recording=False, wait=30)
    browsers(created.id)
    run_id = created.current_run.id
    with pytest.raises(NotFoundError) as missing:
        client.browsers.recording.get(created.id)
    assert code_of(missing) == "recording.not_found"
    assert client.runs.recordings.list(run_id).data == []
    with pytest.raises(NotFoundError) as unknown:
        client.runs.recordings.get(run_id, run_id)
    assert code_of(unknown) == "recording.not_found"
    with pytest.raises(NotFoundError) as no_browser:
        client.browsers.recording.get(unique("no-such-browser"))
    assert code_of(no_browser) == "browser.not_found"


def test_stopped_and_deleted_at_once_the_recording_is_made(client, pages):
    """The browser stopped without waiting and deleted at once: its run's recording is still made."""
    created = client.browsers.create(name=unique("hasty"), wait=30)
    run = created.current_run
    try:
        visit(run.connections.cdp_url, f"{pages.url}/index.html")
        client.browsers.stop(created.id)
    finally:
        client.browsers.delete(created.id)
    recording = settled(client, run.id)
    assert recording.status == "succeeded" and recording.size_bytes > 0, recording

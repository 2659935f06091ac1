"""A run's recording and the deletes that race its export.

A browser stopped and deleted at once keeps its run's recording (the runs stay readable after a
browser's delete, and so does what they recorded), through the flat and the current routes. A run
deleted while its video is being made takes the recording with it, cleanly: the export ends without a
failure logged and leaves no stored bytes or frames behind (it used to log `recording_encode_failed`
with `Run not found`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import uuid

import pytest

from app.live import recorder
from tests.support import eventually

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def _recording(api, run_id: str) -> dict:
    response = await api.post(f"/v1/runs/{run_id}/recording", json={})
    assert response.status_code == 200, response.text
    return response.json()


async def _has_frames(api, run_id: str) -> bool:
    return (await _recording(api, run_id))["durationMs"] > 0


async def _settled(api, run_id: str) -> dict:
    async def check():
        body = await _recording(api, run_id)
        return body if body["status"] not in ("preparing", "processing") else None

    return await eventually(check, timeout=60)


async def test_flat_stop_then_delete_at_once_keeps_the_recording(server, api, stop_afterwards):
    created = await api.post("/v1/runtimes", json={"start": True})
    assert created.status_code == 201, created.text
    runtime = created.json()
    stop_afterwards(runtime["id"])
    run_id = runtime["connection"]["runId"]
    await eventually(lambda: _has_frames(api, run_id), timeout=20)

    assert (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).status_code == 200
    deleted = await api.delete(f"/v1/runtimes/{runtime['id']}")
    assert deleted.status_code == 200, deleted.text

    final = await _settled(api, run_id)
    assert final["status"] == "ready" and final["artifactId"], final


async def test_current_stop_without_waiting_then_delete_keeps_the_recording(server, api):
    created = await api.post("/v1/browsers", params={"wait": 30}, json={}, headers=CURRENT)
    assert created.status_code == 201, created.text
    browser = created.json()
    run_id = browser["currentRun"]["id"]
    try:
        await eventually(lambda: _has_frames(api, run_id), timeout=20)
        stopped = await api.post(f"/v1/browsers/{browser['id']}/stop", json={}, headers=CURRENT)
        assert stopped.status_code == 200, stopped.text
        deleted = await api.delete(f"/v1/browsers/{browser['id']}", headers=CURRENT)
        assert deleted.status_code == 200, deleted.text
    finally:
        await api.delete(f"/v1/browsers/{browser['id']}", headers=CURRENT)

    async def succeeded():
        listed = await api.get(f"/v1/runs/{run_id}/recordings", headers=CURRENT)
        assert listed.status_code == 200, listed.text
        (recording,) = listed.json()["data"]
        return recording if recording["status"] in ("succeeded", "failed") else None

    recording = await eventually(succeeded, timeout=60)
    assert recording["status"] == "succeeded" and recording["sizeBytes"] > 0, recording


class _LogSink:
    """Where the recorder's log lines go during the test (event names, in order)."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def _keep(self, event: str, *args, **kwargs) -> None:
        self.events.append(event)

    info = warning = error = exception = debug = _keep


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_a_run_deleted_while_its_video_is_made_leaves_nothing_and_logs_no_failure(
    make_server, tmp_path, monkeypatch, backend
):
    # ffmpeg, held at a gate until the test opens it: the export is under way while the run is deleted.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = tmp_path / "gated-ffmpeg"
    script.write_text(f'#!/bin/sh\nread _ < "{gate}"\nexec /usr/bin/ffmpeg "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def open_gate(block: bool) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(gate, os.O_WRONLY | (0 if block else os.O_NONBLOCK))
            os.write(fd, b"go\n")
            os.close(fd)

    sink = _LogSink()
    monkeypatch.setattr(recorder, "log", sink)
    async with make_server(backend, ffmpeg_path=str(script)) as srv, await srv.client() as api:
        try:
            created = await api.post("/v1/runtimes", json={"start": True})
            assert created.status_code == 201, created.text
            runtime = created.json()
            run_id = runtime["connection"]["runId"]
            await eventually(lambda: _has_frames(api, run_id), timeout=20)
            assert (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).status_code == 200
            await eventually(lambda: _processing(api, run_id), timeout=30)
            (export,) = [t for t in asyncio.all_tasks() if t.get_name() == f"recorder-stop-{run_id}"]

            deleted = await api.delete(f"/v1/runs/{run_id}", headers=CURRENT)
            assert deleted.status_code == 200, deleted.text
            await asyncio.to_thread(open_gate, True)
            await asyncio.wait_for(export, timeout=60)
        finally:
            open_gate(False)
        assert "recording_encode_failed" not in sink.events and "recording_discarded" in sink.events, sink.events
        assert (await api.get(f"/v1/runs/{run_id}", headers=CURRENT)).status_code == 404
        assert not recorder.frames_dir(srv.ctx, uuid.UUID(run_id)).exists()
        stored = [p for p in srv.settings.objects_dir.rglob("*") if p.is_file()]
        assert stored == [], stored


async def _processing(api, run_id: str) -> bool:
    return (await _recording(api, run_id))["status"] == "processing"

"""Recording frames on the filesystem default (no object store configured): the local layout stays as
it was (each frame a file the replay serves as soon as it is written), and a recorder that takes a run
over, after a clean hand-over or after the previous one died, carries on the numbering and records the
time nobody recorded as a gap (an event and the replay's gaps), with nothing lost that was written."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.live import frames
from app.live.frame_models import RecordingSegment
from app.live.recorder import Recorder
from app.runtimes.models import Runtime
from tests.support import PageServer, eventually

pytestmark = pytest.mark.sqlite  # the writers' bookkeeping on both backends

CURRENT = {"BCTRL-Version": "2026-10-03"}
PAGES = Path(__file__).parents[1] / "e2e" / "pages"


@pytest.fixture(scope="module")
def pages():
    server = PageServer(PAGES)
    yield server
    server.close()


def _recorder_of(server, runtime_id: str) -> Recorder:
    return next(w for w in server.ctx.supervisor._watchers[uuid.UUID(runtime_id)] if isinstance(w, Recorder))


async def _rewatch(server, runtime_id: str, run_id: str) -> Recorder:
    """The run's watchers start afresh, as when another process adopts the run."""
    server.ctx.supervisor.unwatch(uuid.UUID(runtime_id), run_ended=False)
    async with server.ctx.db.read() as s:
        state = (await s.get(Runtime, uuid.UUID(runtime_id))).driver_state
    server.ctx.supervisor.watch(uuid.UUID(runtime_id), uuid.UUID(run_id), state)
    return _recorder_of(server, runtime_id)


async def test_a_recording_taken_over_continues_its_numbering_and_records_the_gaps(server, api, pages):
    made = await api.post("/v1/browsers", params={"wait": 30}, json={}, headers=CURRENT)
    assert made.status_code == 201, made.text
    browser = made.json()
    runtime_id, run_id = browser["id"], browser["currentRun"]["id"]
    directory = frames.local_dir(server.ctx, uuid.UUID(run_id))
    try:
        listed = await api.get(f"/v1/browsers/{runtime_id}/pages", headers=CURRENT)
        page_id = listed.json()["data"]["data"][0]["id"]
        moved = await api.post(
            f"/v1/browsers/{runtime_id}/pages/{page_id}/navigate",
            json={"url": f"{pages.url}/clock.html"},
            headers=CURRENT,
        )
        assert moved.status_code == 200, moved.text
        first = _recorder_of(server, runtime_id)
        await eventually(lambda: first.seq >= 5, timeout=20)

        # Each frame is served as soon as it is written (the local layout needs no segment to close).
        minted = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()
        token = parse_qs(urlsplit(minted["url"]).query)["token"][0]
        data = (await api.get("/v1/replay/data", params={"token": token})).json()
        newest = data["frames"][-1]["seq"]
        got = await api.get(f"/v1/replay/frames/{newest}", params={"token": token})
        assert got.status_code == 200 and got.content[:2] == b"\xff\xd8", got.status_code

        # A clean hand-over: the next recorder starts after the last frame; the gap is only the moment between.
        second = await _rewatch(server, runtime_id, run_id)
        await first._stopping  # its last frame written, then the second begins after it
        handed_over_after = first.seq
        await eventually(lambda: second.registered and second.seq >= handed_over_after + 5, timeout=20)

        # The second one dies (nothing more runs in its process); a third takes over.
        server.ctx.supervisor._watchers[uuid.UUID(runtime_id)].remove(second)
        second._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second._task
        second.ended = True
        await asyncio.sleep(1.0)  # time nobody records (and any write in flight lands)
        died_after = frames.read_index(directory)[-1]["seq"]
        assert died_after >= second.seq
        third = await _rewatch(server, runtime_id, run_id)
        await eventually(lambda: third.registered and third.seq >= died_after + 5, timeout=20)
    finally:
        await api.post(f"/v1/browsers/{runtime_id}/stop", json={}, headers=CURRENT)

    # Read once the last recorder has handed over (its last frame is written at the stop).
    async def ready():
        body = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()
        return body if body["status"] in ("ready", "failed") else None

    final = await eventually(ready, timeout=90, interval=0.5)
    assert final["status"] == "ready", final
    index = frames.read_index(directory)
    seqs = [entry["seq"] for entry in index]
    assert seqs == list(range(1, len(seqs) + 1))  # carried on, never restarted nor repeated
    assert all(frames.frame_path(directory, seq).is_file() for seq in seqs)
    assert not (directory / "spool").exists()
    async with server.ctx.db.read() as s:
        assert (
            await s.execute(select(RecordingSegment).where(RecordingSegment.run_id == uuid.UUID(run_id)))
        ).first() is None

    answer = await api.get(f"/v1/runs/{run_id}/events", params={"type": "recording.gap"})
    gaps = [event["data"] for event in answer.json()["data"]]
    assert [(g["afterSeq"], g["lost"]) for g in gaps] == [(handed_over_after, False), (died_after, False)], gaps
    by_seq = {entry["seq"]: entry["t"] for entry in index}
    # The dead one covered up to its last written frame; the hole lasts until the third one began.
    assert gaps[1]["fromMs"] == by_seq[died_after] and gaps[1]["toMs"] - gaps[1]["fromMs"] >= 900, gaps[1]
    assert gaps[0]["fromMs"] <= gaps[0]["toMs"] < gaps[0]["fromMs"] + 2000, gaps[0]
    assert await frames.gaps(server.ctx, uuid.UUID(run_id)) == gaps

    artifact = (await api.get(f"/v1/runs/{run_id}/artifacts/{final['artifactId']}")).json()
    assert artifact["metadata"]["frames"] == len(index) and artifact["metadata"]["gaps"] == gaps, artifact

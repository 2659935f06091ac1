"""A run's recording frames in the S3 store (moto's S3 server, auth on), as a user of several replicas
sees them:

- a run recorded by one server process is replayed (its data, each frame, the video) through another
  that has a data dir of its own and shares only the database and the bucket;
- a recorder that dies holding frames it had not stored (a SIGKILL) is followed by one that adopts the
  run: the numbering carries on after the last stored frame, the hole is a recorded gap (`lost`), and
  the video covers both parts;
- the store unreachable while recording: a short outage is buffered on disk and caught up; a long one
  fails the recording with `recording.storage_unavailable` while the run goes on, and nothing
  half-written is listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.live import frames
from app.live.frame_models import RecordingSegment, RecordingWriter
from app.live.recorder import Recorder, finalize_abandoned
from app.runtimes.models import Runtime
from app.storage import make_store
from tests.e2e.conftest import cluster
from tests.storage_s3.conftest import BUCKET
from tests.support import PageServer, eventually

CURRENT = {"BCTRL-Version": "2026-10-03"}
PAGES = Path(__file__).parents[1] / "e2e" / "pages"


@pytest.fixture(scope="module")
def pages():
    server = PageServer(PAGES)
    yield server
    server.close()


@pytest.fixture
def quick_segments(monkeypatch):
    """Segments of one second, so a test sees several stored while its run is short."""
    monkeypatch.setattr(frames, "SEGMENT_SECONDS", 1.0)


def colour_of(jpeg: bytes) -> str:
    """The frame's dominant colour, decoded by ffmpeg (scaled to one pixel)."""
    rgb = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", "-", "-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        input=jpeg,
        capture_output=True,
        check=True,
    ).stdout
    r, g, b = rgb[:3]
    if r > 150 and g < 90 and b < 90:
        return "red"
    if g > 140 and r < 90 and b < 90:
        return "green"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    return "other"


def _segment_rows(moto, prefix: str, run_id: str) -> list[str]:
    return moto.keys(f"{prefix}/frames/{run_id}/")


# --- (a) recorded by one replica, replayed through another ---------------------------------------------


def test_a_run_recorded_by_one_server_replays_through_another(moto, prefix, pages, tmp_path):
    env = {
        "BCTRL_STORAGE_URL": f"s3://{BUCKET}/{prefix}",
        "BCTRL_STORAGE_ENDPOINT": moto.endpoint,
        "BCTRL_STORAGE_REGION": "us-east-1",
        "BCTRL_STORAGE_ACCESS_KEY_ID": moto.access_key_id,
        "BCTRL_STORAGE_SECRET_ACCESS_KEY": moto.secret_access_key,
    }
    with cluster(tmp_path, 2, **env) as (one, two), one.client() as c1, two.client() as c2:
        made = c1.post("/v1/browsers", params={"wait": 30}, json={}, headers=CURRENT)
        assert made.status_code == 201, made.text
        browser = made.json()
        run_id = browser["currentRun"]["id"]
        try:
            opened = c1.post(
                f"/v1/browsers/{browser['id']}/pages", json={"url": f"{pages.url}/colours.html"}, headers=CURRENT
            )
            assert opened.status_code == 200, opened.text
            time.sleep(4.5)  # red, green, blue (a second each), then blue a while
        finally:
            stopped = c1.post(f"/v1/browsers/{browser['id']}/stop", json={}, headers=CURRENT)
        assert stopped.status_code == 200, stopped.text

        # Server two never saw the browser: it answers from the database and the bucket.
        deadline = time.monotonic() + 90
        while True:
            minted = c2.post(f"/v1/runs/{run_id}/recording", json={})
            assert minted.status_code == 200, minted.text
            if minted.json()["status"] in ("ready", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert minted.json()["status"] == "ready", minted.json()
        token = parse_qs(urlsplit(minted.json()["url"]).query)["token"][0]
        data = c2.get("/v1/replay/data", params={"token": token})
        assert data.status_code == 200, data.text
        listed = data.json()["frames"]
        assert len(listed) >= 3, listed  # the page paints three colours (a still page sends no frames)
        assert [f["seq"] for f in listed] == list(range(1, len(listed) + 1))
        assert all(a["t"] <= b["t"] for a, b in zip(listed, listed[1:], strict=False))

        seen: list[str] = []
        for frame in listed:
            got = c2.get(f"/v1/replay/frames/{frame['seq']}", params={"token": token})
            assert got.status_code == 200, got.text
            assert got.headers["content-type"] == "image/jpeg" and got.content[:2] == b"\xff\xd8"
            colour = colour_of(got.content)
            if colour in ("red", "green", "blue") and (not seen or seen[-1] != colour):
                seen.append(colour)
        assert seen == ["red", "green", "blue"], seen
        missing = c2.get(f"/v1/replay/frames/{len(listed) + 1}", params={"token": token})
        assert missing.status_code == 404, missing.text

        video = c2.get("/v1/replay/video", params={"token": token})
        assert video.status_code == 200 and video.content[:4] == b"\x1a\x45\xdf\xa3", video.headers  # WebM (EBML)

        # The frames live in the bucket; neither server keeps them (the recorder's spool is gone).
        assert _segment_rows(moto, prefix, run_id), moto.keys(prefix)
        for server in (one, two):
            kept = list((server.data_dir / "recordings" / run_id).rglob("*")) if server.data_dir.exists() else []
            assert [p for p in kept if p.is_file()] == [], kept


# --- helpers of the in-process tests ------------------------------------------------------------------


async def _browser_on(api, pages, page: str = "clock.html") -> dict:
    made = await api.post("/v1/browsers", params={"wait": 30}, json={}, headers=CURRENT)
    assert made.status_code == 201, made.text
    browser = made.json()
    # The browser's one tab shows the page (a second tab would leave the first one behind it).
    listed = await api.get(f"/v1/browsers/{browser['id']}/pages", headers=CURRENT)
    assert listed.status_code == 200, listed.text
    page_id = listed.json()["data"]["data"][0]["id"]
    moved = await api.post(
        f"/v1/browsers/{browser['id']}/pages/{page_id}/navigate", json={"url": f"{pages.url}/{page}"}, headers=CURRENT
    )
    assert moved.status_code == 200, moved.text
    return browser


async def _stop(api, browser: dict) -> None:
    """Stop the browser and wait until it is gone (a stop answers before the browser has exited)."""
    await api.post(f"/v1/browsers/{browser['id']}/stop", json={}, headers=CURRENT)

    async def gone():
        answer = await api.get(f"/v1/browsers/{browser['id']}", headers=CURRENT)
        return answer.status_code == 404 or answer.json()["status"] == "idle"

    await eventually(gone, timeout=60, interval=0.2)


async def _segments(srv, run_id: str) -> list[RecordingSegment]:
    async with srv.ctx.db.read() as s:
        return list(
            (
                await s.execute(
                    select(RecordingSegment)
                    .where(RecordingSegment.run_id == uuid.UUID(run_id))
                    .order_by(RecordingSegment.first_seq)
                )
            ).scalars()
        )


async def _recording(api, run_id: str) -> dict:
    answer = await api.post(f"/v1/runs/{run_id}/recording", json={})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _settled(api, run_id: str) -> dict:
    async def check():
        body = await _recording(api, run_id)
        return body if body["status"] not in ("preparing", "processing") else None

    return await eventually(check, timeout=90, interval=0.5)


def _recorder_of(srv, runtime_id: str) -> Recorder:
    watchers = srv.ctx.supervisor._watchers[uuid.UUID(runtime_id)]
    return next(w for w in watchers if isinstance(w, Recorder))


def _contiguous(segments: list[RecordingSegment]) -> bool:
    return all(b.first_seq == a.last_seq + 1 for a, b in zip(segments, segments[1:], strict=False))


# --- (b) a recorder dies with frames unstored; another adopts the run -----------------------------------


async def test_an_adopting_recorder_continues_after_the_stored_frames_and_records_the_gap(
    make_server, moto, prefix, pages, quick_segments
):
    async with make_server("postgres", **moto.settings(prefix)) as srv, await srv.client() as api:
        browser = await _browser_on(api, pages)
        run_id, runtime_id = browser["currentRun"]["id"], browser["id"]
        try:
            dying = _recorder_of(srv, runtime_id)
            await eventually(lambda: _segments(srv, run_id), timeout=20)  # something stored

            async def holding_unstored():
                stored = await _segments(srv, run_id)
                return dying.seq > stored[-1].last_seq + 1 and stored

            await eventually(holding_unstored, timeout=20, interval=0.05)
            # A SIGKILL: the process stops at once; only what reached the store remains. The supervisor
            # of a killed process does nothing more either, so this recorder leaves its list.
            srv.ctx.supervisor._watchers[uuid.UUID(runtime_id)].remove(dying)
            dying._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dying._task
            dying.ended = True
            await dying.sink.abort()
            captured_by_dying = dying.seq
            stored = await _segments(srv, run_id)
            stored_last = stored[-1].last_seq
            assert captured_by_dying > stored_last  # frames it had captured were lost with it

            # The adoption: the run's watchers start afresh (as the sweep does for a dead owner's run).
            srv.ctx.supervisor.unwatch(uuid.UUID(runtime_id), run_ended=False)
            async with srv.ctx.db.read() as s:
                state = (await s.get(Runtime, uuid.UUID(runtime_id))).driver_state
            srv.ctx.supervisor.watch(uuid.UUID(runtime_id), uuid.UUID(run_id), state)
            adopter = _recorder_of(srv, runtime_id)
            await eventually(lambda: adopter.seq >= stored_last + 8, timeout=20)
        finally:
            await _stop(api, browser)

        final = await _settled(api, run_id)
        assert final["status"] == "ready", final
        segments = await _segments(srv, run_id)
        assert segments[0].first_seq == 1 and _contiguous(segments)
        adopted = [seg for seg in segments if seg.writer == adopter.writer]
        assert adopted and adopted[0].first_seq == stored_last + 1  # numbering carries on
        assert {seg.writer for seg in segments} == {dying.writer, adopter.writer}

        # The hole is recorded: an event, the replay's gaps, the video's metadata. Never silent.
        listed = await api.get(f"/v1/runs/{run_id}/events", params={"type": "recording.gap"})
        (event,) = listed.json()["data"]
        gap = event["data"]
        assert gap["afterSeq"] == stored_last and gap["lost"] is True, gap
        assert gap["fromMs"] < gap["toMs"], gap
        before = next(seg for seg in segments if seg.last_seq == stored_last)
        assert gap["fromMs"] == before.last_ms
        assert await frames.gaps(srv.ctx, uuid.UUID(run_id)) == [gap]

        # The video is made of both parts: every stored frame, over the run's whole length.
        entries = await frames.entries(srv.ctx, uuid.UUID(run_id))
        assert len(entries) == segments[-1].last_seq > stored_last
        artifact = (await api.get(f"/v1/runs/{run_id}/artifacts/{final['artifactId']}")).json()
        assert artifact["metadata"]["frames"] == len(entries), artifact
        assert artifact["metadata"]["gaps"] == [gap], artifact
        video = await api.get(f"/v1/runs/{run_id}/artifacts/{final['artifactId']}/content")
        assert video.status_code == 200, video.text
        seconds = _duration(video.content)
        # It plays from the first frame (the dead recorder's) past the last (the adopter's).
        assert seconds * 1000 >= entries[-1]["t"] - entries[0]["t"], (seconds, entries[0], entries[-1])
        ready = await api.get(f"/v1/runs/{run_id}/events", params={"type": "recording.ready"})
        assert ready.json()["data"][0]["data"]["gaps"] == 1


async def test_a_run_that_ends_after_its_recorder_died_records_the_lost_end(
    make_server, moto, prefix, pages, quick_segments
):
    async with make_server("postgres", **moto.settings(prefix)) as srv, await srv.client() as api:
        browser = await _browser_on(api, pages)
        run_id, runtime_id = browser["currentRun"]["id"], browser["id"]
        try:
            dying = _recorder_of(srv, runtime_id)
            await eventually(lambda: _segments(srv, run_id), timeout=20)
            srv.ctx.supervisor._watchers[uuid.UUID(runtime_id)].remove(dying)
            dying._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dying._task
            dying.ended = True
            await dying.sink.abort()  # killed: nobody adopts the run before it ends
            await asyncio.sleep(1.5)
        finally:
            await _stop(api, browser)

        async def ended():
            body = (await api.get(f"/v1/runs/{run_id}")).json()
            return body if body["status"] != "active" and body.get("finishedAt") else None

        await eventually(ended, timeout=30, interval=0.2)
        # The sweep finishes a recording nobody watched at the run's end (here at once, not after 60 s).
        await finalize_abandoned(srv.ctx, older_than_seconds=0)
        final = await _settled(api, run_id)
        assert final["status"] == "ready", final
        stored = await _segments(srv, run_id)
        (gap,) = await frames.gaps(srv.ctx, uuid.UUID(run_id))
        assert gap["afterSeq"] == stored[-1].last_seq and gap["fromMs"] == stored[-1].last_ms and gap["lost"], gap
        run = (await api.get(f"/v1/runs/{run_id}")).json()
        assert gap["toMs"] >= (_epoch(run["finishedAt"]) - _epoch(run["startedAt"])) * 1000 - 50, (gap, run)
        events_listed = await api.get(f"/v1/runs/{run_id}/events", params={"type": "recording.gap"})
        assert [e["data"] for e in events_listed.json()["data"]] == [gap]


def _duration(webm: bytes) -> float:
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", "-"],
        input=webm,
        capture_output=True,
        check=True,
    )
    return float(probed.stdout.strip() or 0)


# --- (c) the store unreachable while recording -------------------------------------------------------------


class Link:
    """A TCP forwarder on 127.0.0.1 to the store that can be cut (every connection dropped, new ones
    refused: an unreachable store) and restored on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pump(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def start(self) -> Link:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def restore(self) -> None:
        await self.start()


async def test_a_short_outage_of_the_store_is_buffered_and_caught_up(make_server, moto, prefix, pages, quick_segments):
    link = await Link(moto.port).start()
    settings = moto.settings(prefix, storage_endpoint=link.endpoint, storage_timeout_seconds=2)
    async with make_server("postgres", **settings) as srv, await srv.client() as api:
        browser = await _browser_on(api, pages)
        run_id = browser["currentRun"]["id"]
        try:
            await eventually(lambda: _segments(srv, run_id), timeout=20)
            link.cut()
            cut_at = time.time()
            await asyncio.sleep(5)
            during = await _recording(api, run_id)
            assert during["status"] == "preparing", during  # buffered, not failed
            await link.restore()
            restored_at = time.time()
            recorder = _recorder_of(srv, browser["id"])

            async def caught_up():
                stored = await _segments(srv, run_id)
                return (
                    stored
                    and stored[-1].last_seq >= recorder.seq - 10
                    and stored[-1].created_at.timestamp() > restored_at
                )

            await eventually(caught_up, timeout=30, interval=0.2)
        finally:
            await _stop(api, browser)
        final = await _settled(api, run_id)
        assert final["status"] == "ready", final
        segments = await _segments(srv, run_id)
        assert segments[0].first_seq == 1 and _contiguous(segments)
        # Frames captured while the store was away are in the recording (the buffer kept them).
        entries = await frames.entries(srv.ctx, uuid.UUID(run_id))
        run = (await api.get(f"/v1/runs/{run_id}")).json()
        began = _epoch(run["startedAt"])
        inside = [e for e in entries if cut_at + 0.5 < began + e["t"] / 1000 < restored_at - 0.5]
        assert len(inside) >= 5, (len(entries), cut_at - began)
        assert await frames.gaps(srv.ctx, uuid.UUID(run_id)) == []
        assert sorted(f"{prefix}/{seg.object_key}" for seg in segments) == _segment_rows(moto, prefix, run_id)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_a_long_outage_fails_the_recording_cleanly_and_the_run_goes_on(
    make_server, moto, prefix, pages, quick_segments, monkeypatch
):
    monkeypatch.setattr(frames, "BUFFER_BYTES", 400_000)  # a few seconds of the clock page
    link = await Link(moto.port).start()
    settings = moto.settings(prefix, storage_endpoint=link.endpoint, storage_timeout_seconds=2)
    async with make_server("postgres", **settings) as srv, await srv.client() as api:
        browser = await _browser_on(api, pages)
        run_id = browser["currentRun"]["id"]
        try:
            await eventually(lambda: _segments(srv, run_id), timeout=20)
            link.cut()

            async def failed():
                body = await _recording(api, run_id)
                return body if body["status"] == "failed" else None

            body = await eventually(failed, timeout=60, interval=0.5)
            assert body["failure"]["code"] == "recording.storage_unavailable", body
            await link.restore()

            # The run goes on: still active, its browser still answers.
            run = (await api.get(f"/v1/runs/{run_id}")).json()
            assert run["status"] == "active", run
            pages_now = await api.get(f"/v1/browsers/{browser['id']}/pages", headers=CURRENT)
            assert pages_now.status_code == 200, pages_now.text

            # What is listed was stored whole before the outage; nothing half-written is listed or left.
            minted = await _recording(api, run_id)
            token = parse_qs(urlsplit(minted["url"]).query)["token"][0]
            data = (await api.get("/v1/replay/data", params={"token": token})).json()
            assert data["status"] == "failed" and data["frames"], data
            for frame in data["frames"]:
                got = await api.get(f"/v1/replay/frames/{frame['seq']}", params={"token": token})
                assert got.status_code == 200 and got.content[:2] == b"\xff\xd8", (frame, got.status_code)
            segments = await _segments(srv, run_id)
            assert [f["seq"] for f in data["frames"]] == list(range(1, segments[-1].last_seq + 1))
            listed = sorted(f"{prefix}/{seg.object_key}" for seg in segments)
            # A segment whose put was cut after the store had it (its answer lost) is deleted once the store
            # answers again.
            await eventually(lambda: _segment_rows(moto, prefix, run_id) == listed, timeout=30)
            assert [u for u in moto.uploads() if u["Key"].startswith(f"{prefix}/")] == []
            spool = srv.settings.data_dir / "recordings" / run_id / "spool"
            assert not spool.exists() or list(spool.iterdir()) == []
        finally:
            await _stop(api, browser)
        final = await _settled(api, run_id)
        assert final["status"] == "failed" and final["failure"]["code"] == "recording.storage_unavailable", final
        assert final["artifactId"] is None


# --- the store's listing, used to purge a deleted run's frames ------------------------------------------------


async def test_listing_and_purging_a_deleted_runs_frames(make_server, moto, prefix, pages, quick_segments):
    async with make_server("postgres", **moto.settings(prefix)) as srv, await srv.client() as api:
        browser = await _browser_on(api, pages)
        run_id = browser["currentRun"]["id"]
        try:
            await eventually(lambda: len(_segment_rows(moto, prefix, run_id)) >= 2, timeout=20)
        finally:
            await _stop(api, browser)
        await _settled(api, run_id)
        store_keys = await make_store(srv.ctx.settings).list(f"frames/{run_id}/")
        assert [f"{prefix}/{k}" for k in store_keys] == _segment_rows(moto, prefix, run_id)
        deleted = await api.delete(f"/v1/runs/{run_id}", headers=CURRENT)
        assert deleted.status_code == 200, deleted.text
        await eventually(lambda: _segment_rows(moto, prefix, run_id) == [], timeout=30, interval=0.5)
        assert await _segments(srv, run_id) == []
        async with srv.ctx.db.read() as s:
            writers = (
                await s.execute(select(RecordingWriter).where(RecordingWriter.run_id == uuid.UUID(run_id)))
            ).all()
        assert writers == []


async def test_a_things_parts_are_listed_by_its_prefix_in_either_store(moto, prefix, tmp_path):
    from app.storage import FilesystemStore
    from app.storage.s3 import S3Store

    settings = moto.settings(prefix)
    s3 = S3Store(
        settings["storage_url"],
        endpoint=moto.endpoint,
        region="us-east-1",
        access_key_id=moto.access_key_id,
        secret_access_key=moto.secret_access_key,
    )
    mine, other = uuid.uuid4(), uuid.uuid4()
    for store in (s3, FilesystemStore(tmp_path)):
        for run, name in ((mine, "00000011-b.seg"), (mine, "00000001-a.seg"), (other, "00000001-c.seg")):
            source = tmp_path / "part"
            source.write_bytes(name.encode())
            await store.put_file(f"frames/{run}/{name}", source)
        assert await store.list(f"frames/{mine}/") == [f"frames/{mine}/00000001-a.seg", f"frames/{mine}/00000011-b.seg"]
        assert len(await store.list("frames/")) == 3
        await store.delete(f"frames/{mine}/00000001-a.seg")
        assert await store.list(f"frames/{mine}/") == [f"frames/{mine}/00000011-b.seg"]
        # Only the server's own shapes: never a path out of the prefix, never a partial name.
        for bad in (f"frames/{mine}/../x", f"frames/{mine}/a/b", f"frames/{mine}/.hidden", "frames/x/y"):
            with pytest.raises(ValueError):
                await store.put_file(bad, source)
        for bad in ("frames", f"frames/{mine}", "", "../"):
            with pytest.raises(ValueError):
                await store.list(bad)

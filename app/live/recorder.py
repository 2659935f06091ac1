"""Run recordings: while a run is active, the watching server process keeps the run's screencast
frames (at most `recording_fps` a second, the newest frame of each interval), and when the run ends the
frames become a video (WebM with ffmpeg when it is installed, a ZIP of the frames with their times
otherwise) kept as a run artifact.

Where frames live is app/live/frames.py: the data dir's `recordings/<run id>/` on the filesystem
default, segments in the object store with S3 (so any replica replays them and a recorder that adopts
the run carries on after them). The `recordings` row says how far it got. A disk that fills, or an
object store unreachable past the recorder's buffer, ends the recording `failed`; the run goes on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import struct
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.core import clock, ids
from app.live import frames
from app.live.frames import frame_path, read_index
from app.live.models import Recording
from app.live.models import RecordingStatus as RS
from app.live.screencast import Frame, Subscriber
from app.runs import events
from app.runs.models import Run

log = structlog.get_logger(__name__)


def frames_dir(ctx, run_id: uuid.UUID) -> Path:
    """The run's local frames directory (the filesystem default's home of its frames)."""
    return frames.local_dir(ctx, run_id)


__all__ = ["Recorder", "finalize_abandoned", "finalize_recording", "frame_path", "frames_dir", "read_index"]


class Recorder:
    def __init__(self, ctx, runtime_id: uuid.UUID, run_id: uuid.UUID, ws_url: str) -> None:
        self.ctx = ctx
        self.runtime_id, self.run_id, self.ws_url = runtime_id, run_id, ws_url
        self.interval = 1.0 / ctx.settings.recording_fps
        self.pending: Frame | None = None
        self.wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping: asyncio.Task | None = None
        self.started_epoch = 0.0
        self.seq = 0
        self.bytes = 0
        self.last_ms = 0
        # This recorder among the run's writers (a run adopted by another process gets another).
        self.writer = ids.new_id().hex[:12]
        self.sink: frames.LocalSink | frames.SegmentSink | None = None
        self.registered = False
        self._previous: Recorder | None = None
        self.ended = False  # failed or superseded: nothing more to store, nothing to hand over

    def start(self) -> None:
        self._previous = _RECORDING.get(self.run_id)
        _RECORDING[self.run_id] = self
        self._task = asyncio.create_task(self._run(), name=f"recorder-{self.run_id}")

    async def _run(self) -> None:
        previous, self._previous = self._previous, None
        if previous is not None and previous._stopping is not None:
            # The run watched again by this process (its lease lost and regained): the previous recorder
            # hands over first, so the two never number the same frame.
            with contextlib.suppress(Exception):
                await asyncio.shield(previous._stopping)
        async with self.ctx.db.transaction() as s:
            run = await s.get(Run, self.run_id)
            row = await s.get(Recording, self.run_id)
        if run is None or not run.recording:
            return
        self.started_epoch = run.started_at.timestamp()
        if row is None:
            # Its own write-only transaction (on SQLite a read-then-write one can be refused its write).
            now = clock.now()
            try:
                async with self.ctx.db.transaction() as s:
                    s.add(
                        Recording(
                            run_id=self.run_id,
                            status=RS.PREPARING,
                            frames=0,
                            bytes=0,
                            last_frame_ms=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                return  # another process records this run
        elif row.status != RS.PREPARING:
            return  # finished or failed already (adopted after the end)
        else:
            self.bytes = row.bytes
        subscriber = Subscriber(self._on_frame, lambda _state: None, max_fps=self.ctx.settings.recording_fps)
        cast = None
        try:
            self.sink = frames.make_sink(self.ctx, self.run_id, self.writer)
            local_last = await self.sink.start()
            # Adopted from another process: carry on after its stored frames, and record the hole between.
            self.seq, self.last_ms, _gap = await frames.register_writer(
                self.ctx, self.run_id, self.writer, self._ms_now(), local_last
            )
            self.registered = True
            cast = await self.ctx.screencasts.subscribe(self.run_id, self.ws_url, subscriber)
            while True:
                await self.wake.wait()
                self.wake.clear()
                await self._write_pending()
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            raise
        except frames.Superseded:
            log.info("recorder_superseded", run_id=str(self.run_id))
            await self._end()
        except frames.BufferFull as exc:
            await self._end()
            await self._fail("recording.storage_unavailable", f"The object store stayed unreachable: {exc}")
        except OSError as exc:
            await self._end()
            await self._fail("recording.storage_failed", f"Frames could not be written: {exc.strerror or exc}")
        except Exception as exc:
            log.warning("recorder_failed", run_id=str(self.run_id), exc_info=True)
            await self._end()
            await self._fail("recording.failed", f"Recording stopped: {type(exc).__name__}")
        finally:
            if cast is not None:
                await self.ctx.screencasts.unsubscribe(cast, subscriber)

    async def _end(self) -> None:
        self.ended = True
        if self.sink is not None:
            await self.sink.abort()

    def _ms_now(self) -> int:
        return max(0, int((clock.now().timestamp() - self.started_epoch) * 1000))

    def _on_frame(self, frame: Frame) -> None:
        self.pending = frame
        self.wake.set()

    async def _write_pending(self) -> None:
        frame, self.pending = self.pending, None
        if frame is None or self.sink is None or self.ended:
            return
        if not self.ctx.lease.held():
            return  # another replica may own this run now (app/runtimes/ownership.py): it records it
        data = base64.b64decode(frame.data)
        t = max(self.last_ms, int((frame.timestamp - self.started_epoch) * 1000))
        seq = self.seq + 1
        await self.sink.append(seq, t, data)
        self.seq, self.last_ms, self.bytes = seq, t, self.bytes + len(data)
        if not self.sink.stores_progress and (seq == 1 or seq % 10 == 0):
            await self._save_progress()

    async def _save_progress(self) -> None:
        async with self.ctx.db.transaction() as s:
            await s.execute(
                update(Recording)
                .where(Recording.run_id == self.run_id, Recording.status == RS.PREPARING)
                .values(frames=self.seq, bytes=self.bytes, last_frame_ms=self.last_ms, updated_at=clock.now())
            )

    async def _fail(self, code: str, message: str) -> None:
        log.warning("recording_failed", run_id=str(self.run_id), code=code, reason=message)
        async with self.ctx.db.transaction() as s:
            await s.execute(
                update(Recording)
                .where(Recording.run_id == self.run_id)
                .values(status=RS.FAILED, failure={"code": code, "message": message}, updated_at=clock.now())
            )

    awaited = False  # the video is made in the background, after the run

    @classmethod
    def for_run(cls, ctx, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict[str, Any]) -> Recorder | None:
        return cls(ctx, runtime_id, run_id, state["wsUrl"]) if state.get("wsUrl") else None

    def stop(self, finalize: bool) -> asyncio.Task:
        """Stop keeping frames; with `finalize` (the run ended) make the video. Idempotent."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(finalize), name=f"recorder-stop-{self.run_id}")
        return self._stopping

    async def _stop(self, finalize: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.sink is not None and not self.ended:
            if self.registered:
                await self._hand_over(finalize)
            else:
                await self.sink.abort()  # stopped before it began: nothing captured
        if _RECORDING.get(self.run_id) is self:
            del _RECORDING[self.run_id]
        if finalize:
            await finalize_recording(self.ctx, self.run_id)

    async def _hand_over(self, finalize: bool) -> None:
        """Store what was captured; when all of it is, say until when this writer watched (the next one
        records no lost frames). A run that ended with frames that could not be stored fails its
        recording rather than make a video silently shorter than the run."""
        clean = False
        # An append cancelled with the task may still have been written by its worker thread.
        self.seq, self.last_ms = max((self.seq, self.last_ms), self.sink.written)
        try:
            if self.pending is not None:
                await self._write_pending()
            clean = await self.sink.close()
            if self.seq and not self.sink.stores_progress:
                await self._save_progress()
        except OSError as exc:
            await self.sink.abort()
            await self._fail("recording.storage_failed", f"Frames could not be written: {exc.strerror or exc}")
            return
        except (frames.BufferFull, frames.Superseded):
            await self.sink.abort()
        if clean:
            await frames.writer_stopped(self.ctx, self.run_id, self.writer, max(self._ms_now(), self.last_ms))
        elif finalize and not isinstance(self.sink.failure, frames.Superseded):
            await self._fail(
                "recording.storage_unavailable", "The last frames could not be stored: the object store is unreachable"
            )


# The recorder of each run this process records (the latest started).
_RECORDING: dict[uuid.UUID, Recorder] = {}


# The event a finished recording announces, by its final status.
_ANNOUNCED = {
    RS.READY: "recording.ready",
    RS.NOT_AVAILABLE: "recording.not_available",
    RS.FAILED: "recording.encode_failed",
}


def _announcement(status: str, entries: list[dict[str, Any]], fields: dict[str, Any], gaps: list) -> dict[str, Any]:
    data: dict[str, Any] = {"status": status, "frames": len(entries)}
    if "failure" in fields:
        data["failure"] = fields["failure"]
    if gaps:
        data["gaps"] = len(gaps)
    return data


async def finalize_recording(ctx, run_id: uuid.UUID) -> None:
    """Turn a finished run's frames into its recording artifact. Whoever moves the row from
    `preparing` to `processing` does it, so it happens once whichever process notices the end."""
    async with ctx.db.transaction() as s:
        claimed = (
            await s.execute(
                update(Recording)
                .where(Recording.run_id == run_id, Recording.status == RS.PREPARING)
                .values(status=RS.PROCESSING, updated_at=clock.now())
            )
        ).rowcount
    if not claimed:
        return
    entries: list[dict[str, int]] = []
    gaps: list[dict[str, Any]] = []
    try:
        async with ctx.db.read() as s:
            run = await s.get(Run, run_id)
        if run is not None:
            end = run.finished_at or clock.now()
            await frames.close_writers(ctx, run_id, int((end - run.started_at).total_seconds() * 1000))
        entries = await frames.entries(ctx, run_id)
        gaps = await frames.gaps(ctx, run_id)
        if not entries:
            status, fields = RS.NOT_AVAILABLE, {}
        else:
            fields = await _make_artifact(ctx, run_id, entries, gaps)
            status = RS.READY
    except Exception as exc:
        if not await _run_exists(ctx, run_id):
            # The run was deleted while its video was made (with its recording row): nothing failed, the
            # recording went with the run. Its stored copy, if any, was removed by artifacts.record; frames
            # in the object store go with the sweep (frames.purge_deleted).
            log.info("recording_discarded", run_id=str(run_id), reason="run deleted while its video was made")
            await asyncio.to_thread(shutil.rmtree, frames.local_dir(ctx, run_id), True)
            return
        log.warning("recording_encode_failed", run_id=str(run_id), exc_info=True)
        status, fields = RS.FAILED, {"failure": {"code": "recording.encode_failed", "message": str(exc)[:500]}}
    async with ctx.db.transaction() as s:
        await s.execute(
            update(Recording)
            .where(Recording.run_id == run_id)
            .values(
                status=status,
                frames=len(entries),
                last_frame_ms=entries[-1]["t"] if entries else 0,
                updated_at=clock.now(),
                **fields,
            )
        )
        # Announced in the same transaction (webhooks and drains follow the run's events).
        if await s.get(Run, run_id) is not None:
            await events.append(
                s, run_id, _ANNOUNCED[status], "recording", _announcement(status, entries, fields, gaps)
            )


async def _run_exists(ctx, run_id: uuid.UUID) -> bool:
    async with ctx.db.read() as s:
        return await s.get(Run, run_id) is not None


async def _make_artifact(
    ctx, run_id: uuid.UUID, entries: list[dict[str, int]], gaps: list[dict[str, Any]]
) -> dict[str, Any]:
    from app.artifacts import service as artifacts

    async with ctx.db.read() as s:
        run = await s.get(Run, run_id)
    if run is None:
        raise LookupError("the run was deleted")
    end_ms = int(((run.finished_at or clock.now()) - run.started_at).total_seconds() * 1000)
    ffmpeg = ctx.settings.resolved_ffmpeg_path
    metadata: dict[str, Any] = {"frames": len(entries), "durationMs": end_ms}
    if gaps:
        metadata["gaps"] = gaps  # where the video holds a frame over time nobody recorded
    async with frames.materialized(ctx, run_id, entries) as directory:
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            if ffmpeg:
                output, content_type, fmt = Path(scratch) / "recording.webm", "video/webm", "webm"
                await _encode(ffmpeg, directory, entries, max(end_ms, entries[-1]["t"] + 100), output)
            else:
                output, content_type, fmt = Path(scratch) / "recording.zip", "application/zip", "frames"
                await asyncio.to_thread(_zip_frames, directory, entries, output)
            artifact = await artifacts.record(
                ctx,
                run_id=run_id,
                kind="recording",
                name=output.name,
                content_type=content_type,
                source=output,
                metadata=metadata,
            )
    return {"artifact_id": artifact.id, "video_format": fmt}


async def _encode(ffmpeg: str, directory: Path, entries: list[dict[str, int]], end_ms: int, output: Path) -> None:
    # The concat demuxer shows each frame until the next one's time; the last one until the run's end.
    lines = ["ffconcat version 1.0"]
    for entry, following in zip(entries, [*entries[1:], {"t": end_ms}], strict=True):
        lines += [
            f"file '{frame_path(directory, entry['seq'])}'",
            f"duration {max(following['t'] - entry['t'], 1) / 1000:.3f}",
        ]
    lines.append(f"file '{frame_path(directory, entries[-1]['seq'])}'")
    width, height = jpeg_size(frame_path(directory, entries[0]["seq"]).read_bytes())
    # Even-sized and never empty (a page that has not painted yet can give a 1x1 frame).
    box = f"{max(width // 2 * 2, 2)}:{max(height // 2 * 2, 2)}"
    listing = output.with_suffix(".txt")
    listing.write_text("\n".join(lines) + "\n")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg,
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(listing),
        # Frames may change size with the page; fit all into the first one's (even-sized) box.
        "-vf",
        f"scale={box}:force_original_aspect_ratio=decrease,pad={box}:-1:-1,format=yuv420p",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "1M",
        "-auto-alt-ref",
        "0",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await proc.communicate()
    except BaseException:
        proc.kill()  # cancelled (shutdown): no encoder left behind; the sweeper finishes it later
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise ValueError("not a JPEG with a frame header")


def _zip_frames(directory: Path, entries: list[dict[str, int]], output: Path) -> None:
    with zipfile.ZipFile(output, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("index.json", orjson.dumps(entries))
        for entry in entries:
            archive.write(frame_path(directory, entry["seq"]), f"frames/{entry['seq']:06d}.jpg")


def recording_duration_ms(run: Run, row: Recording | None) -> int:
    end = run.finished_at or clock.now()
    return max(0, int((end - run.started_at).total_seconds() * 1000)) if row and row.frames else 0


async def finalize_abandoned(ctx, older_than_seconds: float = 60.0) -> None:
    """Finish recordings left `preparing` by a run that ended while no process watched it (a crash)."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.runs.models import RunStatus

    now = clock.now()
    async with ctx.db.transaction() as s:
        # Judged by the run's end, not the row's last update: a still page adds no frames for long.
        run_ids = (
            (
                await s.execute(
                    select(Recording.run_id)
                    .join(Run, Run.id == Recording.run_id)
                    .where(
                        Recording.status == RS.PREPARING,
                        Run.status != RunStatus.ACTIVE,
                        Run.finished_at < now - timedelta(seconds=older_than_seconds),
                    )
                    .limit(20)
                )
            )
            .scalars()
            .all()
        )
        # Encoding that a process abandoned (it crashed or shut down mid-way): start it again.
        await s.execute(
            update(Recording)
            .where(Recording.status == RS.PROCESSING, Recording.updated_at < now - timedelta(minutes=15))
            .values(status=RS.PREPARING, updated_at=now)
        )
    for run_id in run_ids:
        await finalize_recording(ctx, run_id)
    if frames.in_store(ctx):
        try:
            await frames.purge_deleted(ctx)
        except Exception:
            log.warning("recording_frames_purge_failed", exc_info=True)  # the store is down: next sweep

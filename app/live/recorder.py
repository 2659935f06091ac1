"""Run recordings: while a run is active, the watching server process keeps the run's screencast
frames on disk (at most `recording_fps` a second, the newest frame of each interval), and when the
run ends the frames become a video (WebM with ffmpeg when it is installed, a ZIP of the frames with
their times otherwise) kept as a run artifact.

Frames live under `<data dir>/recordings/<run id>/`: `NNNNNN.jpg` and `index.jsonl` lines
`{"seq", "t"}` (milliseconds since the run started). The `recordings` row says how far it got.
A disk that fills ends the recording `failed`; the run goes on.
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

from app.core import clock, datadir
from app.live.models import Recording
from app.live.models import RecordingStatus as RS
from app.live.screencast import Frame, Subscriber
from app.runs.models import Run

log = structlog.get_logger(__name__)


def frames_dir(ctx, run_id: uuid.UUID) -> Path:
    return datadir.recording_frames(ctx.settings.data_dir, run_id)


def frame_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:06d}.jpg"


def read_index(directory: Path) -> list[dict[str, int]]:
    try:
        lines = (directory / "index.jsonl").read_bytes().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        with contextlib.suppress(orjson.JSONDecodeError):
            entries.append(orjson.loads(line))
    return entries


class Recorder:
    def __init__(self, ctx, runtime_id: uuid.UUID, run_id: uuid.UUID, ws_url: str) -> None:
        self.ctx = ctx
        self.runtime_id, self.run_id, self.ws_url = runtime_id, run_id, ws_url
        self.dir = frames_dir(ctx, run_id)
        self.interval = 1.0 / ctx.settings.recording_fps
        self.pending: Frame | None = None
        self.wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping: asyncio.Task | None = None
        self.started_epoch = 0.0
        self.seq = 0
        self.bytes = 0
        self.last_ms = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"recorder-{self.run_id}")

    async def _run(self) -> None:
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
        # Adopted from another process: carry on after its frames.
        existing = read_index(self.dir)
        if existing:
            self.seq, self.last_ms = existing[-1]["seq"], existing[-1]["t"]
        subscriber = Subscriber(self._on_frame, lambda _state: None, max_fps=self.ctx.settings.recording_fps)
        cast = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            cast = await self.ctx.screencasts.subscribe(self.run_id, self.ws_url, subscriber)
            while True:
                await self.wake.wait()
                self.wake.clear()
                await self._write_pending()
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            await self._fail("recording.storage_failed", f"Frames could not be written: {exc.strerror or exc}")
        except Exception as exc:
            log.warning("recorder_failed", run_id=str(self.run_id), exc_info=True)
            await self._fail("recording.failed", f"Recording stopped: {type(exc).__name__}")
        finally:
            if cast is not None:
                await self.ctx.screencasts.unsubscribe(cast, subscriber)

    def _on_frame(self, frame: Frame) -> None:
        self.pending = frame
        self.wake.set()

    async def _write_pending(self) -> None:
        frame, self.pending = self.pending, None
        if frame is None:
            return
        data = base64.b64decode(frame.data)
        t = max(self.last_ms, int((frame.timestamp - self.started_epoch) * 1000))
        seq = self.seq + 1
        await asyncio.to_thread(self._append, seq, t, data)
        self.seq, self.last_ms, self.bytes = seq, t, self.bytes + len(data)
        if seq == 1 or seq % 10 == 0:
            await self._save_progress()

    def _append(self, seq: int, t: int, data: bytes) -> None:
        frame_path(self.dir, seq).write_bytes(data)
        with open(self.dir / "index.jsonl", "ab") as index:
            index.write(orjson.dumps({"seq": seq, "t": t}) + b"\n")

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
        try:
            if self.pending is not None:
                await self._write_pending()
            if self.seq:
                await self._save_progress()
        except OSError as exc:
            await self._fail("recording.storage_failed", f"Frames could not be written: {exc.strerror or exc}")
        if finalize:
            await finalize_recording(self.ctx, self.run_id)


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
    directory = frames_dir(ctx, run_id)
    entries = read_index(directory)
    try:
        if not entries:
            status, fields = RS.NOT_AVAILABLE, {}
        else:
            fields = await _make_artifact(ctx, run_id, directory, entries)
            status = RS.READY
    except Exception as exc:
        if not await _run_exists(ctx, run_id):
            # The run was deleted while its video was made (with its recording row): nothing failed, the
            # recording went with the run. Its stored copy, if any, was removed by artifacts.record.
            log.info("recording_discarded", run_id=str(run_id), reason="run deleted while its video was made")
            await asyncio.to_thread(shutil.rmtree, directory, True)
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


async def _run_exists(ctx, run_id: uuid.UUID) -> bool:
    async with ctx.db.read() as s:
        return await s.get(Run, run_id) is not None


async def _make_artifact(ctx, run_id: uuid.UUID, directory: Path, entries: list[dict[str, int]]) -> dict[str, Any]:
    from app.artifacts import service as artifacts

    async with ctx.db.read() as s:
        run = await s.get(Run, run_id)
    if run is None:
        raise LookupError("the run was deleted")
    end_ms = int(((run.finished_at or clock.now()) - run.started_at).total_seconds() * 1000)
    ffmpeg = ctx.settings.resolved_ffmpeg_path
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
            metadata={"frames": len(entries), "durationMs": end_ms},
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

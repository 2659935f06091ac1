"""Where a run's recording frames live, how a recorder writes them, and how the replay and the video
read them back.

Two homes, picked by the configured object store:

- The filesystem default keeps the layout it always had: `<data dir>/recordings/<run id>/NNNNNN.jpg`
  and `index.jsonl` lines `{"seq", "t"}`, each frame visible as soon as it is written. One server (or
  replicas sharing the data dir) needs nothing more, and nothing gets slower.
- With an S3 store (`BCTRL_STORAGE_URL`), frames are spooled on the recorder's disk and stored every
  `SEGMENT_SECONDS` (or `SEGMENT_BYTES`) as one object, `frames/<run id>/<first seq>-<writer>.seg`:
  the JPEGs back to back. A `recording_segments` row, written only once its object is complete, lists
  each frame's time and size, so any replica replays a frame with one range read, and a recorder that
  adopts the run carries on after the last stored frame. The replay of a run in progress lags the
  browser by up to a segment.

A store that cannot be reached keeps the spool growing on disk up to `BUFFER_BYTES`, stored as soon as
the store answers again; past that the recording fails (`recording.storage_unavailable`), the run goes
on, and what was stored before stays replayable.

Each recorder of a run registers as a writer (app/live/frame_models.py). When a recorder adopts a run,
the time between the previous writer's end and its own start is a recorded gap (`recording.gap` event,
replay data `gaps`, the video's metadata), with `lost` when the previous writer died holding frames it
had not stored: never a silent hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog
from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from app.core import clock, datadir
from app.live.frame_models import RecordingSegment, RecordingWriter
from app.live.models import Recording
from app.live.models import RecordingStatus as RS
from app.runs import events
from app.runs.models import Run
from app.storage import make_store

log = structlog.get_logger(__name__)

# A segment is stored after this long or this many bytes, whichever comes first.
SEGMENT_SECONDS = 5.0
SEGMENT_BYTES = 4 * 1024 * 1024
# Frames not yet stored (the store unreachable) kept on disk up to this; beyond, the recording fails.
# At the default 5 frames a second of ~50 KB that is a few minutes of outage.
BUFFER_BYTES = 64 * 1024 * 1024
# Between attempts to store while the store does not answer (doubling up to this).
RETRY_MAX_SECONDS = 15.0
ORPHAN_RETRY_SECONDS = 600.0


class BufferFull(Exception):
    """The store stayed unreachable until the spool reached BUFFER_BYTES."""


class Superseded(Exception):
    """Another recorder took the run over (or its recording ended): this one stores nothing more."""


def in_store(ctx) -> bool:
    return bool(ctx.settings.storage_url)


# --- the local layout -----------------------------------------------------------------------------


def local_dir(ctx, run_id: uuid.UUID) -> Path:
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


def _last_local(directory: Path) -> Path | None:
    """The newest frame written: the index's last line (read from its tail, not the whole index)."""
    try:
        with open(directory / "index.jsonl", "rb") as index:
            index.seek(0, os.SEEK_END)
            index.seek(max(0, index.tell() - 4096))
            lines = index.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            path = frame_path(directory, int(orjson.loads(line)["seq"]))
            if path.is_file():
                return path
    return None


# --- reading, either home ---------------------------------------------------------------------------


def segment_key(run_id: uuid.UUID, first_seq: int, writer: str) -> str:
    return f"frames/{run_id}/{first_seq:08d}-{writer}.seg"


async def _segments(ctx, run_id: uuid.UUID) -> list[RecordingSegment]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.execute(
                    select(RecordingSegment)
                    .where(RecordingSegment.run_id == run_id)
                    .order_by(RecordingSegment.first_seq)
                )
            ).scalars()
        )


def _entries_of(rows: list[RecordingSegment]) -> list[dict[str, int]]:
    return [{"seq": row.first_seq + i, "t": t} for row in rows for i, (t, _size) in enumerate(row.frames)]


async def entries(ctx, run_id: uuid.UUID) -> list[dict[str, int]]:
    """Every stored frame's `{"seq", "t"}` in order."""
    if not in_store(ctx):
        return await asyncio.to_thread(read_index, local_dir(ctx, run_id))
    return _entries_of(await _segments(ctx, run_id))


async def _read_from_segment(ctx, row: RecordingSegment, seq: int) -> bytes:
    i = seq - row.first_seq
    offset = sum(size for _t, size in row.frames[:i])
    size = row.frames[i][1]
    chunks = [chunk async for chunk in make_store(ctx.settings).open(row.object_key, offset, offset + size - 1)]
    return b"".join(chunks)


async def read_frame(ctx, run_id: uuid.UUID, seq: int) -> bytes | Path | None:
    """One frame: its file on the filesystem default, its bytes (one range read) from the S3 store."""
    if seq < 1:
        return None
    if not in_store(ctx):
        path = frame_path(local_dir(ctx, run_id), seq)
        return path if await asyncio.to_thread(path.is_file) else None
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(RecordingSegment)
                .where(RecordingSegment.run_id == run_id, RecordingSegment.first_seq <= seq)
                .order_by(RecordingSegment.first_seq.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    if row is None or seq > row.last_seq:
        return None
    return await _read_from_segment(ctx, row, seq)


async def last_frame(ctx, run_id: uuid.UUID) -> bytes | Path | None:
    """The newest stored frame (a run's thumbnail), or None."""
    if not in_store(ctx):
        return await asyncio.to_thread(_last_local, local_dir(ctx, run_id))
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(RecordingSegment)
                .where(RecordingSegment.run_id == run_id)
                .order_by(RecordingSegment.first_seq.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    return None if row is None else await _read_from_segment(ctx, row, row.last_seq)


async def gaps(ctx, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """The holes between one recorder's end and the next one's start, in order."""
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(RecordingWriter)
                .where(RecordingWriter.run_id == run_id, RecordingWriter.gap_from_ms.is_not(None))
                .order_by(RecordingWriter.ordinal)
            )
        ).scalars()
        return [_gap(row) for row in rows]


def _gap(row: RecordingWriter) -> dict[str, Any]:
    return {
        "fromMs": row.gap_from_ms,
        "toMs": row.started_ms,
        "afterSeq": row.first_seq - 1,
        "lost": bool(row.gap_lost),
    }


@contextlib.asynccontextmanager
async def materialized(ctx, run_id: uuid.UUID, frames: list[dict[str, int]]) -> AsyncIterator[Path]:
    """A directory holding `frames` as `NNNNNN.jpg` files (and room for scratch files), for the video.

    The local home is that directory already. From the S3 store each segment is streamed into files
    of a temporary directory under the data dir (never the whole recording in memory), removed after."""
    if not in_store(ctx):
        yield local_dir(ctx, run_id)
        return
    root = ctx.settings.data_dir.resolve() / "recordings"
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    wanted = {entry["seq"] for entry in frames}
    store = make_store(ctx.settings)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".finish-{run_id}-") as scratch:
        directory = Path(scratch)
        for row in await _segments(ctx, run_id):
            await _split_segment(store, row, directory, wanted)
        yield directory


async def _split_segment(store, row: RecordingSegment, directory: Path, wanted: set[int]) -> None:
    sizes = deque((row.first_seq + i, size) for i, (_t, size) in enumerate(row.frames))
    current: BinaryIO | None = None
    left = 0
    try:
        async for chunk in store.open(row.object_key):
            view = memoryview(chunk)
            while view:
                if current is None:
                    if not sizes:
                        return  # bytes past the listed frames: not ours to use
                    seq, left = sizes.popleft()
                    target = frame_path(directory, seq) if seq in wanted else Path(os.devnull)
                    current = await asyncio.to_thread(open, target, "wb")
                take = view[:left]
                await asyncio.to_thread(current.write, take)
                view, left = view[len(take) :], left - len(take)
                if left == 0:
                    current.close()
                    current = None
    finally:
        if current is not None:
            current.close()


# --- writers: who recorded which part, and the gaps between them ------------------------------------


async def register_writer(
    ctx, run_id: uuid.UUID, writer: str, started_ms: int, local_last: tuple[int, int] | None
) -> tuple[int, int, dict[str, Any] | None]:
    """Make `writer` the run's recorder from now on: (last stored seq, its time, the gap it records).

    Under the recording row's lock, so a previous writer still storing (a process that lost the run
    but does not know it yet) is refused from here on (`store_segment`). `local_last` is the last
    frame of the local index; from the S3 store the last stored segment says it."""
    async with ctx.db.transaction() as s:
        await s.execute(select(Recording.run_id).where(Recording.run_id == run_id).with_for_update())
        previous = (
            await s.execute(
                select(RecordingWriter)
                .where(RecordingWriter.run_id == run_id)
                .order_by(RecordingWriter.ordinal.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if local_last is not None:
            last_seq, last_ms = local_last
        else:
            last = (
                await s.execute(
                    select(RecordingSegment.last_seq, RecordingSegment.last_ms)
                    .where(RecordingSegment.run_id == run_id)
                    .order_by(RecordingSegment.first_seq.desc())
                    .limit(1)
                )
            ).first()
            last_seq, last_ms = (last[0], last[1]) if last else (0, 0)
        gap = None
        row = RecordingWriter(
            run_id=run_id,
            ordinal=(previous.ordinal + 1) if previous else 1,
            writer=writer,
            first_seq=last_seq + 1,
            started_ms=max(started_ms, last_ms),
            created_at=clock.now(),
        )
        if previous is not None:
            # A clean stop says until when it watched; a writer that died covered only what it stored,
            # and (from the S3 store) what it held unstored is lost.
            died = previous.stopped_ms is None
            covered = last_ms if died else max(previous.stopped_ms, last_ms)
            lost = died and in_store(ctx)
            if lost or covered < row.started_ms:
                row.gap_from_ms, row.gap_lost = min(covered, row.started_ms), lost
                gap = _gap(row)
        if gap is not None:
            await events.append(s, run_id, "recording.gap", "recording", gap)
            log.info("recording_gap", run_id=str(run_id), **gap)
        s.add(row)
    return last_seq, last_ms, gap


async def close_writers(ctx, run_id: uuid.UUID, end_ms: int) -> None:
    """At the end of the run: when its last writer died (nobody adopted the run before it ended), the
    time from its last stored frame to the run's end is a gap too (recorded by a `finisher` writer)."""
    async with ctx.db.read() as s:
        latest = (
            await s.execute(
                select(RecordingWriter)
                .where(RecordingWriter.run_id == run_id)
                .order_by(RecordingWriter.ordinal.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    if latest is None or latest.stopped_ms is not None:
        return
    local_last = None
    if not in_store(ctx):
        index = await asyncio.to_thread(read_index, local_dir(ctx, run_id))
        local_last = (index[-1]["seq"], index[-1]["t"]) if index else (0, 0)
    await register_writer(ctx, run_id, "finisher", end_ms, local_last)
    await writer_stopped(ctx, run_id, "finisher", end_ms)


async def writer_stopped(ctx, run_id: uuid.UUID, writer: str, stopped_ms: int) -> None:
    """The writer stored everything it captured and watched until `stopped_ms`."""
    async with ctx.db.transaction() as s:
        await s.execute(
            update(RecordingWriter)
            .where(RecordingWriter.run_id == run_id, RecordingWriter.writer == writer)
            .values(stopped_ms=stopped_ms)
        )


# --- the local writer ------------------------------------------------------------------------------


class LocalSink:
    """Frames straight into the local layout: each one visible as soon as it is written."""

    stores_progress = False  # the recorder saves the row's progress itself
    failure = None

    def __init__(self, ctx, run_id: uuid.UUID) -> None:
        self.directory = local_dir(ctx, run_id)
        self.written = (0, 0)  # (seq, t) of the last frame written, set by the writing thread

    async def start(self) -> tuple[int, int] | None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        existing = await asyncio.to_thread(read_index, self.directory)
        return (existing[-1]["seq"], existing[-1]["t"]) if existing else (0, 0)

    async def append(self, seq: int, t: int, data: bytes) -> None:
        await asyncio.to_thread(self._append, seq, t, data)

    def _append(self, seq: int, t: int, data: bytes) -> None:
        frame_path(self.directory, seq).write_bytes(data)
        with open(self.directory / "index.jsonl", "ab") as index:
            index.write(orjson.dumps({"seq": seq, "t": t}) + b"\n")
        self.written = (seq, t)

    async def close(self) -> bool:
        return True

    async def abort(self) -> None:
        pass


# --- the S3 writer -----------------------------------------------------------------------------------


@dataclass
class _Spool:
    """Frames of one future segment, appended to a file on the recorder's disk."""

    path: Path
    first_seq: int
    opened: float = field(default_factory=time.monotonic)
    frames: list[list[int]] = field(default_factory=list)
    size: int = 0
    last_ms: int = 0
    file: BinaryIO | None = None
    sent: bool = False  # its object was put at least once: it may be in the store, answer lost or not

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.frames) - 1

    def write(self, t: int, data: bytes) -> None:
        if self.file is None:
            self.file = open(self.path, "ab")
        self.file.write(data)
        self.frames.append([t, len(data)])
        self.size += len(data)
        self.last_ms = t

    def seal(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class SegmentSink:
    """Frames into the S3 store, a segment at a time, stored in order by one uploader task."""

    stores_progress = True  # each stored segment updates the recording row in its transaction

    def __init__(self, ctx, run_id: uuid.UUID, writer: str) -> None:
        self.ctx, self.run_id, self.writer = ctx, run_id, writer
        self.store = make_store(ctx.settings)
        self.spool_dir = local_dir(ctx, run_id) / "spool"
        self.open: _Spool | None = None
        self.sealed: deque[_Spool] = deque()
        self.wake = asyncio.Event()
        # Held while a frame is written to the open spool, so the uploader never seals it mid-write.
        self.lock = asyncio.Lock()
        self.closing = False
        self.failure: Exception | None = None
        self._uploader: asyncio.Task | None = None
        self.stored_segments = 0
        self.stored_bytes = 0

    @property
    def written(self) -> tuple[int, int]:
        """(seq, t) of the last frame spooled and not yet stored ((0, 0) when none is)."""
        spool = self.open or (self.sealed[-1] if self.sealed else None)
        return (spool.last_seq, spool.last_ms) if spool is not None and spool.frames else (0, 0)

    @property
    def unstored_bytes(self) -> int:
        return sum(spool.size for spool in self.sealed) + (self.open.size if self.open else 0)

    async def start(self) -> None:
        # Spools a writer of this run left on this disk (a crash) can no longer be stored in order.
        await asyncio.to_thread(shutil.rmtree, self.spool_dir, True)
        await asyncio.to_thread(self.spool_dir.mkdir, parents=True, exist_ok=True)
        self._uploader = asyncio.create_task(self._upload_loop(), name=f"recording-upload-{self.run_id}")

    async def append(self, seq: int, t: int, data: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        if self.unstored_bytes + len(data) > BUFFER_BYTES:
            raise BufferFull(f"{self.unstored_bytes} bytes of frames could not be stored")
        async with self.lock:
            if self.open is None:
                self.open = _Spool(self.spool_dir / f"{seq:08d}.seg", seq)
            await asyncio.to_thread(self.open.write, t, data)
            if self.open.size >= SEGMENT_BYTES:
                self._seal()

    def _seal(self) -> None:
        if self.open is not None and self.open.frames:
            self.open.seal()
            self.sealed.append(self.open)
            self.open = None
            self.wake.set()

    async def _upload_loop(self) -> None:
        delay = 1.0
        while True:
            # Wake when the open spool is due (SEGMENT_SECONDS after its first frame), or when woken.
            due = SEGMENT_SECONDS - (time.monotonic() - self.open.opened) if self.open is not None else SEGMENT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(due, 0.05))
            self.wake.clear()
            async with self.lock:
                if self.closing or (self.open is not None and time.monotonic() - self.open.opened >= SEGMENT_SECONDS):
                    self._seal()
            try:
                await self._drain()
                delay = 1.0
            except Superseded as exc:
                self.failure = exc
                return
            except Exception as exc:
                if self.closing:
                    raise
                log.warning(
                    "recording_segment_not_stored",
                    run_id=str(self.run_id),
                    error=type(exc).__name__,
                    unstored_bytes=self.unstored_bytes,
                    retry_in=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)  # a close cuts the wait short
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if self.closing:
                return

    async def _drain(self) -> None:
        while self.sealed:
            spool = self.sealed[0]
            await self.store_segment(spool)
            self.sealed.popleft()
            await asyncio.to_thread(spool.path.unlink, True)

    async def store_segment(self, spool: _Spool) -> None:
        """The object first (a retry writes the same key again), then its row: a segment is listed
        only once its object is complete. Refused (Superseded) unless this writer is the run's latest."""
        key = segment_key(self.run_id, spool.first_seq, self.writer)
        spool.sent = True
        await self.store.put_file(key, spool.path)
        try:
            async with self.ctx.db.transaction() as s:
                recording = (
                    await s.execute(select(Recording).where(Recording.run_id == self.run_id).with_for_update())
                ).scalar_one_or_none()
                latest = (
                    await s.execute(
                        select(RecordingWriter.writer)
                        .where(RecordingWriter.run_id == self.run_id)
                        .order_by(RecordingWriter.ordinal.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if recording is None or recording.status != RS.PREPARING or latest != self.writer:
                    raise Superseded("the run's recording is another writer's now, or it ended")
                s.add(
                    RecordingSegment(
                        run_id=self.run_id,
                        first_seq=spool.first_seq,
                        last_seq=spool.last_seq,
                        last_ms=spool.last_ms,
                        frames=spool.frames,
                        object_key=key,
                        bytes=spool.size,
                        writer=self.writer,
                        created_at=clock.now(),
                    )
                )
                recording.frames = spool.last_seq
                recording.bytes = (recording.bytes or 0) + spool.size
                recording.last_frame_ms = spool.last_ms
                recording.updated_at = clock.now()
        except IntegrityError:
            if not await self._already_mine(spool.first_seq, key):
                await self._forget(key)
                raise Superseded("another writer stored these frames") from None
        except Superseded:
            await self._forget(key)
            raise
        self.stored_segments += 1
        self.stored_bytes += spool.size

    async def _already_mine(self, first_seq: int, key: str) -> bool:
        # An earlier attempt's commit went through though its answer was lost.
        async with self.ctx.db.read() as s:
            row = await s.get(RecordingSegment, (self.run_id, first_seq))
        return row is not None and row.object_key == key

    async def _forget(self, key: str) -> None:
        try:
            await asyncio.shield(self.store.delete(key))
        except Exception:
            log.warning("recording_segment_orphaned", run_id=str(self.run_id), key=key)

    async def close(self) -> bool:
        """Store what is left (one attempt each: the store's timeout bounds it). True when every frame
        captured is stored; the spool is removed either way (nobody else could store it in order)."""
        self.closing = True
        self.wake.set()
        clean = False
        try:
            if self._uploader is not None:
                await self._uploader
            async with self.lock:
                self._seal()
            if self.failure is None:
                await self._drain()
                clean = True
        except Exception as exc:
            log.warning("recording_final_segments_not_stored", run_id=str(self.run_id), error=type(exc).__name__)
        finally:
            await self.abort()
        return clean

    async def abort(self) -> None:
        """Stop storing and drop what was not stored."""
        self.closing = True
        if self._uploader is not None and not self._uploader.done():
            self._uploader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._uploader
        if self.open is not None:
            self.open.seal()
        for spool in self.sealed:
            spool.seal()
        # A put whose answer was lost (the store cut mid-request) may have stored the object all the same:
        # those never listed are deleted once the store answers again.
        sent = [segment_key(self.run_id, spool.first_seq, self.writer) for spool in self.sealed if spool.sent]
        if sent:
            _forget_later(self.ctx, self.store, self.run_id, sent)
        self.open, self.sealed = None, deque()
        await asyncio.to_thread(shutil.rmtree, self.spool_dir, True)


_forgetting: set[asyncio.Task] = set()


def _forget_later(ctx, store, run_id: uuid.UUID, keys: list[str]) -> None:
    task = asyncio.create_task(_forget_unlisted(ctx, store, run_id, keys))
    _forgetting.add(task)
    task.add_done_callback(_forgetting.discard)


async def _forget_unlisted(ctx, store, run_id: uuid.UUID, keys: list[str]) -> None:
    """Delete the objects of these keys that no segment row lists, retrying while the store is away
    (ORPHAN_RETRY_SECONDS at most; after that, or if this process stops first, they stay, logged)."""
    pending, delay = list(keys), 1.0
    deadline = time.monotonic() + ORPHAN_RETRY_SECONDS
    while pending:
        for key in list(pending):
            try:
                async with ctx.db.read() as s:
                    listed = (await s.execute(select(exists().where(RecordingSegment.object_key == key)))).scalar_one()
                if not listed:
                    await store.delete(key)
                pending.remove(key)
            except Exception:
                pass  # the store or the database is away: next round
        if pending and time.monotonic() + delay > deadline:
            log.warning("recording_segments_orphaned", run_id=str(run_id), keys=pending)
            return
        if pending:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)


def make_sink(ctx, run_id: uuid.UUID, writer: str) -> LocalSink | SegmentSink:
    return SegmentSink(ctx, run_id, writer) if in_store(ctx) else LocalSink(ctx, run_id)


# --- a deleted run's frames -----------------------------------------------------------------------------


async def purge_deleted(ctx, limit: int = 20) -> int:
    """Delete the stored frames of runs deleted since (their segment rows outlive them for this), every
    object under the run's prefix, so an object whose row never committed goes too. Returns how many runs."""
    async with ctx.db.read() as s:
        run_ids = list(
            (
                await s.execute(
                    select(RecordingSegment.run_id)
                    .where(~exists().where(Run.id == RecordingSegment.run_id))
                    .distinct()
                    .limit(limit)
                )
            ).scalars()
        )
    store = make_store(ctx.settings)
    for run_id in run_ids:
        for key in await store.list(f"frames/{run_id}/"):
            await store.delete(key)
        async with ctx.db.transaction() as s:
            await s.execute(delete(RecordingSegment).where(RecordingSegment.run_id == run_id))
    return len(run_ids)

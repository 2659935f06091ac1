"""The batching event writer for high-volume run events (the observer's browser, network and
console events). Lifecycle events (runtime.*, connection.*) do not come through here: they are
written in the same transaction as the state change they describe (`events.append`).

Events are queued without blocking the caller and flushed in batches: per batch, one sequence
allocation per run and one multi-row insert. The queue is bounded. Policy when it fills:
network events are sampled first (half, then a quarter of them are kept as the queue fills),
then dropped; other events are dropped only when their own, larger queue is full. Whatever is
dropped is counted and written as an `events.dropped` event of the run at the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, deque
from typing import Any

import structlog
from sqlalchemy import insert, update
from sqlalchemy.exc import InterfaceError, OperationalError

from app.core import clock, ids
from app.core.db import TOUCHED_RUNS, Database
from app.runs.models import Run, RunEvent

log = structlog.get_logger(__name__)

SAMPLED_CATEGORIES = frozenset({"network"})


def _clean(value: Any) -> Any:
    """PostgreSQL's JSONB cannot hold NUL characters, and a page can log anything."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    def __init__(
        self,
        db: Database,
        *,
        bulk_capacity: int = 50_000,
        capacity: int = 200_000,
        batch_size: int = 2_000,
        interval: float = 0.01,
    ) -> None:
        self.db = db
        self.bulk_capacity = bulk_capacity
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self._bulk: deque[dict[str, Any]] = deque()
        self._other: deque[dict[str, Any]] = deque()
        self._dropped: dict[uuid.UUID, Counter] = {}
        self._sample_tick = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.written = 0

    def emit(
        self,
        run_id: uuid.UUID,
        type: str,
        category: str,
        data: dict[str, Any] | None = None,
        *,
        source: str = "browser",
        page_id: str | None = None,
        connection_id: uuid.UUID | None = None,
    ) -> bool:
        """Queue an event; False when the queue policy dropped it (it is counted)."""
        row = {
            "id": ids.new_id(),
            "run_id": run_id,
            "time": clock.now(),
            "type": type,
            "category": category,
            "source": source,
            "page_id": page_id,
            "connection_id": connection_id,
            "data": _clean(data or {}),
        }
        if category in SAMPLED_CATEGORIES:
            if not self._admit_sampled():
                self._count_drop(run_id, type)
                return False
            self._bulk.append(row)
        else:
            if len(self._other) >= self.capacity:
                self._count_drop(run_id, type)
                return False
            self._other.append(row)
        if len(self._bulk) + len(self._other) >= self.batch_size:
            self._wake.set()
        return True

    def _admit_sampled(self) -> bool:
        fill = len(self._bulk) / self.bulk_capacity
        if fill >= 1.0:
            return False
        if fill < 0.5:
            return True
        self._sample_tick += 1
        return self._sample_tick % (2 if fill < 0.75 else 4) == 0

    def _count_drop(self, run_id: uuid.UUID, type: str) -> None:
        self._dropped.setdefault(run_id, Counter())[type] += 1

    @property
    def pending(self) -> int:
        return len(self._bulk) + len(self._other)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="event-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop. Never cancelled mid-insert: that would leave the database
        connection half-way through a statement."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.error("event_writer_stop_timed_out", pending=self.pending)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                while self.pending or self._dropped:
                    await self.flush()
            except Exception:
                log.exception("event_flush_failed")
                if self._stopping:
                    return
                await asyncio.sleep(1.0)
            if self._stopping and not self.pending:
                return

    async def flush(self) -> int:
        """Write one batch; returns how many events were written."""
        batch: list[dict[str, Any]] = []
        # Non-network events first: they are the ones a reader should never miss.
        while self._other and len(batch) < self.batch_size:
            batch.append(self._other.popleft())
        while self._bulk and len(batch) < self.batch_size:
            batch.append(self._bulk.popleft())
        dropped, self._dropped = self._dropped, {}
        for run_id, counts in dropped.items():
            batch.append(
                {
                    "id": ids.new_id(),
                    "run_id": run_id,
                    "time": clock.now(),
                    "type": "events.dropped",
                    "category": "lifecycle",
                    "source": "control-plane",
                    "page_id": None,
                    "connection_id": None,
                    "data": {"count": sum(counts.values()), "byType": dict(counts), "reason": "event queue full"},
                }
            )
        if not batch:
            return 0
        try:
            written = await self._insert(batch)
        except (OperationalError, InterfaceError, OSError):
            self._requeue(batch)  # the database is away: keep everything for the next try
            raise
        except Exception:
            log.warning("event_batch_failed_retrying_rows", size=len(batch), exc_info=True)
            # One bad row must not block every run's events: write them one by one, count the rejects.
            written = 0
            for index, row in enumerate(batch):
                try:
                    written += await self._insert([row])
                except (OperationalError, InterfaceError, OSError):
                    self._requeue(batch[index:])
                    raise
                except Exception:
                    if row["type"] != "events.dropped":
                        self._count_drop(row["run_id"], row["type"])
        self.written += written
        return written

    def _requeue(self, rows: list[dict[str, Any]]) -> None:
        for row in reversed(rows):
            if row["type"] == "events.dropped":
                counts = self._dropped.setdefault(row["run_id"], Counter())
                counts.update(row["data"]["byType"])
            else:
                (self._bulk if row["category"] in SAMPLED_CATEGORIES else self._other).appendleft(row)

    async def _insert(self, batch: list[dict[str, Any]]) -> int:
        by_run: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in batch:
            row.pop("seq", None)
            by_run.setdefault(row["run_id"], []).append(row)
        async with self.db.transaction() as s:
            for run_id in sorted(by_run):  # a fixed lock order across writers
                rows = by_run[run_id]
                last = (
                    await s.execute(
                        update(Run)
                        .where(Run.id == run_id)
                        .values(event_seq=Run.event_seq + len(rows))
                        .returning(Run.event_seq)
                    )
                ).scalar_one_or_none()
                if last is None:  # the run was deleted meanwhile
                    by_run[run_id] = []
                    continue
                for offset, row in enumerate(rows):
                    row["seq"] = last - len(rows) + 1 + offset
            rows = [row for group in by_run.values() for row in group]
            if rows:
                await s.execute(insert(RunEvent), rows)
            s.info.setdefault(TOUCHED_RUNS, set()).update(r for r, g in by_run.items() if g)
        return len(rows)

"""The batching event writer for high-volume run events (the observer's browser, network and
console events). Lifecycle events (runtime.*, connection.*) do not come through here: they are
written in the same transaction as the state change they describe (`events.append`).

Events are queued without blocking the caller and flushed in batches: per batch, one sequence
allocation per run and one multi-row insert. The queue is bounded. Policy when it fills:
network events are sampled first (half, then a quarter of them are kept as the queue fills),
then dropped; other events are dropped only when their own, larger queue is full. Whatever is
dropped is counted and written as an `events.dropped` event of the run at the next flush.

An event given an `owner` (the run observer's: its server instance) is written only while that instance
owns the run's browser (`serverInstance` in the runtime's driver state), checked in the batch's own
transaction: the fencing token of run ownership (app/runtimes/ownership.py). A replica that lost a run
while it could not look (paused, cut off) and still holds a socket to the browser writes nothing of it.

An event of a task without a run (`run_id` None, `task_id` given: the task runner's `task.*` and
`tool_call.*` events) is numbered by the task (`events.task_seqs`), one allocation per task a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, deque
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from app.core import clock, ids, metrics
from app.core.db import TOUCHED_RUNS, Database
from app.outbox.models import OutboxRow, ordered_xact
from app.runs import events
from app.runs.models import Run, RunEvent
from app.runtimes.models import Runtime

log = structlog.get_logger(__name__)

SAMPLED_CATEGORIES = frozenset({"network"})
_OWNER = "owner"  # a queued row's fencing token; not a column


def _clean(value: Any) -> Any:
    """PostgreSQL's JSONB cannot hold NUL characters, and a page can log anything."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _task_owner(row: dict[str, Any]) -> tuple:
    return (None, row["task_id"], row["conversation_id"], row["agent_id"])


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
        # (run id, task id, conversation id, agent id) -> dropped events by type.
        self._dropped: dict[tuple, Counter] = {}
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
        task_id: uuid.UUID | None = None,
        conversation_id: uuid.UUID | None = None,
        agent_id: uuid.UUID | None = None,
        owner: str | None = None,
    ) -> bool:
        """Queue an event of the run (or, with `run_id` None, of the task `task_id`); False when the
        queue policy dropped it (it is counted)."""
        if run_id is None and task_id is None:
            raise ValueError("an event needs a run_id or a task_id")
        if task_id is not None:
            category = events.category_of(type, category)
        row = {
            "id": ids.new_id(),
            "run_id": run_id,
            "task_id": task_id,
            "conversation_id": conversation_id,
            "agent_id": agent_id,
            "time": clock.now(),
            "type": type,
            "category": category,
            "source": source,
            "page_id": page_id,
            "connection_id": connection_id,
            "data": _clean(data or {}),
        }
        if owner is not None:
            row[_OWNER] = owner
        if category in SAMPLED_CATEGORIES:
            if not self._admit_sampled():
                self._count_drop(row, type)
                return False
            self._bulk.append(row)
        else:
            if len(self._other) >= self.capacity:
                self._count_drop(row, type)
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

    def _count_drop(self, row: dict[str, Any], type: str) -> None:
        # Counted per owner: the run, or for a run-less event the task (with its conversation and agent).
        owner = (row["run_id"], None, None, None) if row["run_id"] is not None else _task_owner(row)
        self._dropped.setdefault(owner, Counter())[type] += 1
        metrics.events_dropped.labels(row["category"]).inc()

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
        for (run_id, task_id, conversation_id, agent_id), counts in dropped.items():
            batch.append(
                {
                    "id": ids.new_id(),
                    "run_id": run_id,
                    "task_id": task_id,
                    "conversation_id": conversation_id,
                    "agent_id": agent_id,
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
                        self._count_drop(row, row["type"])
        self.written += written
        metrics.events_written.inc(written)
        return written

    def _requeue(self, rows: list[dict[str, Any]]) -> None:
        for row in reversed(rows):
            if row["type"] == "events.dropped":
                owner = (row["run_id"], None, None, None) if row["run_id"] is not None else _task_owner(row)
                counts = self._dropped.setdefault(owner, Counter())
                counts.update(row["data"]["byType"])
            else:
                (self._bulk if row["category"] in SAMPLED_CATEGORIES else self._other).appendleft(row)

    async def _insert(self, batch: list[dict[str, Any]]) -> int:
        by_run: dict[uuid.UUID, list[dict[str, Any]]] = {}
        by_task: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in batch:
            row.pop("seq", None)
            if row["run_id"] is not None:
                by_run.setdefault(row["run_id"], []).append(row)
            else:
                by_task.setdefault(row["task_id"], []).append(row)
        # The account of each run and task, and the `xact` of its events' outbox rows.
        accounts: dict[uuid.UUID, uuid.UUID] = {}
        xacts: dict[uuid.UUID, int] = {}
        async with self.db.transaction() as s:
            await _fence(s, by_run)
            for run_id in sorted(by_run):  # a fixed lock order across writers
                rows = by_run[run_id]
                if not rows:
                    continue
                found = (
                    await s.execute(
                        update(Run)
                        .where(Run.id == run_id)
                        .values(event_seq=Run.event_seq + len(rows), outbox_xact=ordered_xact(Run.outbox_xact))
                        .returning(Run.event_seq, Run.account_id, Run.outbox_xact)
                    )
                ).one_or_none()
                if found is None:  # the run was deleted meanwhile
                    by_run[run_id] = []
                    continue
                last, accounts[run_id], xacts[run_id] = found
                for offset, row in enumerate(rows):
                    row["seq"] = last - len(rows) + 1 + offset
            # Then the run-less events of tasks, each task's numbered under its row's lock.
            lasts = await events.task_seqs(s, by_task, {t: len(rows) for t, rows in by_task.items()})
            for task_id, rows in by_task.items():
                if task_id not in lasts:  # the task was deleted meanwhile
                    rows.clear()
                    continue
                numbered = lasts[task_id]
                xacts[task_id], accounts[task_id] = numbered.xact, numbered.account_id
                for offset, row in enumerate(rows):
                    row["seq"] = numbered.last - len(rows) + 1 + offset
            rows = [row for group in (*by_run.values(), *by_task.values()) for row in group]
            if rows:
                await s.execute(insert(RunEvent), [_columns(row) for row in rows])
                # Their outbox rows, in the same transaction: one more multi-row insert.
                await s.execute(insert(OutboxRow), [_outbox_row(row, accounts, xacts) for row in rows])
            s.info.setdefault(TOUCHED_RUNS, set()).update(
                [*(r for r, g in by_run.items() if g), *(t for t, g in by_task.items() if g)]
            )
        return len(rows)


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != _OWNER} if _OWNER in row else row


async def _fence(s, by_run: dict[uuid.UUID, list[dict[str, Any]]]) -> None:
    """Drop the rows whose owner no longer owns their run's browser (another replica took it over)."""
    owned = sorted(run_id for run_id, rows in by_run.items() if any(_OWNER in row for row in rows))
    if not owned:
        return
    # The runs' rows first (the order the numbering below takes them in): a takeover writes its
    # `runtime.adopted` through the run's row after changing the owner, so once these are held the owner
    # read next is final for this batch, on PostgreSQL too.
    await s.execute(select(Run.id).where(Run.id.in_(owned)).order_by(Run.id).with_for_update())
    found = await s.execute(
        select(Run.id, Runtime.driver_state)
        # Only while the runtime still serves this run: a runtime started again since has a new owner
        # who says nothing about this run's last events.
        .join(Runtime, (Runtime.id == Run.runtime_id) & (Runtime.active_run_id == Run.id))
        .where(Run.id.in_(owned))
    )
    owners = {run_id: (state or {}).get("serverInstance") for run_id, state in found.all()}
    for run_id in owned:
        rows = by_run[run_id]
        now = owners.get(run_id)  # None: a driver state naming no owner (nothing to fence against)
        kept = [row for row in rows if _OWNER not in row or now is None or row[_OWNER] == now]
        if len(kept) < len(rows):
            log.warning("events_fenced", run_id=str(run_id), dropped=len(rows) - len(kept), owner=owners.get(run_id))
            by_run[run_id] = kept


def _outbox_row(
    row: dict[str, Any], accounts: dict[uuid.UUID, uuid.UUID], xacts: dict[uuid.UUID, int]
) -> dict[str, Any]:
    owner = row["run_id"] if row["run_id"] is not None else row["task_id"]
    return {
        "xact": xacts[owner],
        "event_id": row["id"],
        "account_id": accounts[owner],
        "category": row["category"],
        "type": row["type"],
        "created_at": row["time"],
    }

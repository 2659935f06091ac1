"""The drain pump: every server process runs one; each drain is worked by one process at a time.

A process claims a due drain with a lease (`lease_owner`, `lease_until`: a conditional UPDATE, so two
replicas never send the same drain's batches at once), reads the next batch of its account's events in
the drain's categories from the outbox after its cursor, in commit order, and sends it. The cursor
moves only when the destination took the batch; a failed batch is remembered (`pending_*`) and sent
again, the same events, after an exponential backoff (`BCTRL_DRAINS_RETRY_*`), until it is delivered:
nothing is skipped, nothing is reordered. Delivery is at least once: a destination that took a batch
but whose answer was lost gets it again (same `webhook-id`, same S3 key).

What the events look like on the wire is the current generation's business: the assembly hands the
pump `Words` (the event's shape, the drain's categories in ours, the spans a finished run leaves)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from app.core import clock, metrics
from app.core.context import AppContext
from app.drains import delivery
from app.drains.models import Drain
from app.outbox import service as outbox
from app.outbox.service import Cursor
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent

log = structlog.get_logger(__name__)

MAX_DUE = 50  # drains worked per round


@dataclass(frozen=True)
class Words:
    # The event as exported: (event, space id, browser id) -> a JSON object.
    event: Callable[[RunEvent, uuid.UUID | None, uuid.UUID | None], dict[str, Any]]
    # A drain's categories as the outbox's (ours); None: every event.
    categories: Callable[[list[str]], Collection[str] | None]
    # The finished spans (OpenTelemetry, with `traceId`) an event closes, such as a run's end; [] mostly.
    spans: Callable[[AppContext, RunEvent], Awaitable[list[dict[str, Any]]]]


async def lowest_cursor(ctx: AppContext) -> Cursor | None:
    """What the outbox must keep for drains: the lowest cursor of any drain (disabled ones included)."""
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(Drain.cursor_xact, Drain.cursor_position)
                .order_by(Drain.cursor_xact, Drain.cursor_position)
                .limit(1)
            )
        ).first()
    return Cursor(row.cursor_xact, row.cursor_position) if row else None


outbox.register_consumer("drains", lowest_cursor)


def backoff(settings, failures: int) -> float:
    return min(settings.drains_retry_max_seconds, settings.drains_retry_base_seconds * 2 ** max(0, failures - 1))


class DrainPump:
    def __init__(self, ctx: AppContext, words: Words) -> None:
        self.ctx = ctx
        self.words = words
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="drain-pump")

    async def stop(self) -> None:
        if self._task is not None:
            while not self._task.done():  # cancelled until done (a lost cancellation must not hang shutdown)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(self._task), 1)
            self._task = None
        await self._release_all()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("drain_pump_failed")
                busy = False
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.ctx.settings.drains_poll_seconds)

    async def run_once(self) -> bool:
        """Work every due drain once; whether any had something to do (then the next round starts now)."""
        claimed = await self._claim()
        if not claimed:
            return False
        results = await asyncio.gather(*(self._work(d) for d in claimed), return_exceptions=True)
        for drain, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                log.error("drain_work_failed", drain_id=str(drain.id), error=repr(result))
                await self._release(drain)
        return any(r is True for r in results)

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.drains_timeout_seconds * 3 + 30)

    async def _claim(self) -> list[Drain]:
        now = clock.now()
        due = or_(Drain.next_attempt_at.is_(None), Drain.next_attempt_at <= now)
        free = or_(Drain.lease_until.is_(None), Drain.lease_until < now)
        async with self.ctx.db.read() as s:
            ids = list((await s.execute(select(Drain.id).where(Drain.enabled, due, free).limit(MAX_DUE))).scalars())
        claimed: list[Drain] = []
        for drain_id in ids:
            async with self.ctx.db.transaction() as s:
                done = await s.execute(
                    update(Drain)
                    .where(Drain.id == drain_id, Drain.enabled, due, free)
                    .values(lease_owner=self.owner, lease_until=now + self._lease())
                )
                if done.rowcount == 1:
                    row = await s.get(Drain, drain_id)
                    if row is not None:
                        claimed.append(row)
        return claimed

    def _mine(self, drain: Drain):
        return update(Drain).where(Drain.id == drain.id, Drain.lease_owner == self.owner)

    async def _release(self, drain: Drain) -> None:
        async with self.ctx.db.transaction() as s:
            await s.execute(self._mine(drain).values(lease_owner=None, lease_until=None))

    async def _release_all(self) -> None:
        with contextlib.suppress(Exception):
            async with self.ctx.db.transaction() as s:
                await s.execute(
                    update(Drain).where(Drain.lease_owner == self.owner).values(lease_owner=None, lease_until=None)
                )

    async def _work(self, drain: Drain) -> bool:
        """One batch of `drain`: True when it moved (more may follow at once)."""
        after = Cursor(drain.cursor_xact, drain.cursor_position)
        pending = Cursor(drain.pending_xact, drain.pending_position) if drain.pending_xact is not None else None
        page = await outbox.read(
            self.ctx,
            after,
            self.ctx.settings.drains_batch_size,
            account_id=drain.account_id,
            categories=self.words.categories(list(drain.categories)),
        )
        items, cursor = page.items, page.cursor
        if pending is not None and any(i.cursor > pending for i in items):
            # The retry of a failed batch: exactly its events, and the cursor just past its last one.
            items, cursor = [i for i in items if i.cursor <= pending], pending
        if not items:
            async with self.ctx.db.transaction() as s:
                await s.execute(
                    self._mine(drain).values(
                        cursor_xact=cursor.xact, cursor_position=cursor.position, lease_owner=None, lease_until=None
                    )
                )
            return cursor != after
        try:
            sent = await delivery.deliver(self.ctx, drain, await self._batch(drain, items))
        except Exception as e:
            if not isinstance(e, delivery.Failed):  # a fault of ours: still a failed attempt, with backoff
                log.exception("drain_delivery_error", drain_id=str(drain.id))
                e = delivery.Failed(f"internal error while sending: {type(e).__name__}")
            metrics.drain_deliveries.labels(drain.kind, "failed").inc()
            await self._failed(drain, items[-1].cursor, e.message)
            return False
        metrics.drain_deliveries.labels(drain.kind, "delivered").inc()
        metrics.drain_events.labels(drain.kind).inc(len(items))
        now = clock.now()
        async with self.ctx.db.transaction() as s:
            await s.execute(
                self._mine(drain).values(
                    cursor_xact=cursor.xact,
                    cursor_position=cursor.position,
                    pending_xact=None,
                    pending_position=None,
                    events_sent=Drain.events_sent + len(items),
                    bytes_sent=Drain.bytes_sent + sent.bytes,
                    failures=0,
                    last_delivery_at=now,
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return True

    async def _failed(self, drain: Drain, last: Cursor, message: str) -> None:
        now = clock.now()
        failures = drain.failures + 1
        delay = backoff(self.ctx.settings, failures)
        log.warning("drain_delivery_failed", drain_id=str(drain.id), failures=failures, retry_in=delay, error=message)
        async with self.ctx.db.transaction() as s:
            await s.execute(
                self._mine(drain).values(
                    pending_xact=last.xact,
                    pending_position=last.position,
                    failures=failures,
                    last_error=message,
                    last_error_at=now,
                    next_attempt_at=now + timedelta(seconds=delay),
                    lease_owner=None,
                    lease_until=None,
                )
            )

    async def _batch(self, drain: Drain, items: list[outbox.OutboxItem]) -> delivery.Batch:
        events = [i.event for i in items]
        runs = {e.run_id for e in events if e.run_id is not None}
        tasks = {e.task_id for e in events if e.run_id is None and e.task_id is not None}
        where: dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]] = {}
        async with self.ctx.db.read() as s:
            if runs:
                for run_id, space_id, runtime_id in await s.execute(
                    select(Run.id, Run.space_id, Run.runtime_id).where(Run.id.in_(runs))
                ):
                    where[run_id] = (space_id, runtime_id)
            if tasks:
                for task_id, space_id in await s.execute(
                    select(Command.id, Command.space_id).where(Command.id.in_(tasks))
                ):
                    where[task_id] = (space_id, None)
        shaped = [self.words.event(e, *where.get(e.run_id or e.task_id, (None, None))) for e in events]
        spans: list[dict[str, Any]] = []
        if drain.kind == "otlp":
            for e in events:
                spans += await self.words.spans(self.ctx, e)
        first, last = items[0].cursor, items[-1].cursor
        return delivery.Batch(
            id=f"drain_{drain.id.hex}_{first.xact}.{first.position}-{last.xact}.{last.position}",
            first=first.position,
            last=last.position,
            when=events[0].time,
            events=shaped,
            spans=spans,
        )

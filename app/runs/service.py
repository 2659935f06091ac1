"""Runs: the durable record each runtime start opens. Reading runs and their events."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from app.accounts.service import Principal
from app.artifacts.models import Artifact
from app.core import clock, datadir
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.paging import PageParams, encode_cursor, fetch_by_id, split_page
from app.runs import activity as activity_items
from app.runs import commands, streams
from app.runs.models import Run, RunEvent, RunStatus
from app.runs.streams import EventFilter
from app.storage import make_store

log = structlog.get_logger(__name__)


def run_not_found(run_id: object) -> NotFound:
    return NotFound("Run not found", code="run.not_found", details={"runId": str(run_id)})


async def get(ctx: AppContext, p: Principal, run_id: str) -> Run:
    run = await get_owned(ctx.db, Run, run_id, p.account_id)
    if run is None:
        raise run_not_found(run_id)
    return run


async def list_runs(
    ctx: AppContext,
    p: Principal,
    page: PageParams,
    *,
    space_id: uuid.UUID | None = None,
    runtime_id: uuid.UUID | None = None,
    statuses: list[str] | None = None,
    newest_first: bool = False,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[Run], str | None]:
    stmt = select(Run).where(Run.account_id == p.account_id)
    if created_from is not None:
        stmt = stmt.where(Run.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Run.created_at < created_to)
    if space_id is not None:
        stmt = stmt.where(Run.space_id == space_id)
    if runtime_id is not None:
        stmt = stmt.where(Run.runtime_id == runtime_id)
    if statuses:
        stmt = stmt.where(Run.status.in_(statuses))
    return await fetch_by_id(ctx.db, stmt, Run.id, page, newest_first=newest_first)


async def list_events(
    ctx: AppContext, run: Run, page: PageParams, flt: EventFilter
) -> tuple[list[RunEvent], str | None]:
    stmt = flt.apply(select(RunEvent).where(RunEvent.run_id == run.id))
    if page.after is not None:
        if not isinstance(page.after, int):
            raise InvalidRequest(
                "cursor is not an event cursor",
                details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
            )
        stmt = stmt.where(RunEvent.seq > page.after)
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt.order_by(RunEvent.seq).limit(page.limit + 1))).scalars())
    return split_page(rows, page, lambda e: e.seq)


async def wait_event(
    ctx: AppContext, run: Run, flt: EventFilter, cursor: str | None, timeout_ms: int
) -> tuple[RunEvent | None, str]:
    """Long-poll for the next matching event after `cursor` (or after now)."""
    event, last = await streams.wait_next(ctx, run, flt, streams.seq_of(cursor), timeout_ms / 1000)
    return event, encode_cursor(last)


def follow(ctx: AppContext, run: Run, flt: EventFilter, cursor: str | None):
    """The SSE frames of the run's events from `cursor` (checked before the stream starts)."""
    return streams.follow(ctx, run, flt, streams.seq_of(cursor) or 0)


ACTIVITY_EVENT_CAP = 50_000


async def activity(
    ctx: AppContext, run: Run, page: PageParams, categories: list[str] | None, level: str | None
) -> tuple[list[dict], str | None, bool]:
    """The run's activity items (derived from up to ACTIVITY_EVENT_CAP events), filtered and paged."""
    async with ctx.db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(RunEvent).where(RunEvent.run_id == run.id).order_by(RunEvent.seq).limit(ACTIVITY_EVENT_CAP)
                )
            ).scalars()
        )
    items = activity_items.select_items(activity_items.build(rows), categories, level)
    start = page.after if isinstance(page.after, int) else 0
    chunk = items[start : start + page.limit]
    more = start + page.limit < len(items)
    # `truncated` tells a reader this answer is not the whole timeline: a further page, a navigation whose
    # requests were capped at MAX_CHILDREN, or a run longer than the events the timeline is built from.
    capped = any(i.get("requests", 0) > len(i.get("children") or ()) for i in chunk)
    truncated = more or capped or len(rows) >= ACTIVITY_EVENT_CAP
    return chunk, encode_cursor(start + page.limit) if more else None, truncated


async def list_commands(
    ctx: AppContext, run: Run, page: PageParams, statuses: list[str] | None, order: str, include: set[str]
) -> tuple[list[dict], str | None]:
    rows, cursor = await commands.list_commands(ctx.db, run.id, page, statuses=statuses, descending=order == "desc")
    return [commands.as_wire(c, include) for c in rows], cursor


async def purge_old_events(ctx: AppContext, batch: int = 10_000) -> int:
    """Delete events older than BCTRL_EVENT_RETENTION_DAYS (0 keeps everything); returns how many."""
    days = ctx.settings.event_retention_days
    if not days:
        return 0
    cutoff = clock.now() - timedelta(days=days)
    removed = 0
    while True:
        async with ctx.db.transaction() as s:
            ids_ = list((await s.execute(select(RunEvent.id).where(RunEvent.time < cutoff).limit(batch))).scalars())
            if ids_:
                await s.execute(sql_delete(RunEvent).where(RunEvent.id.in_(ids_)))
        removed += len(ids_)
        if len(ids_) < batch:
            return removed


async def delete(ctx: AppContext, run: Run) -> uuid.UUID:
    """Delete an ended run with everything it recorded: events, commands, connections, viewer links,
    artifacts and their bytes, the recording's frames. An active run is 409 `run.active`."""
    async with ctx.db.transaction() as s:
        run = (await s.execute(select(Run).where(Run.id == run.id).with_for_update())).scalar_one()
        if run.status == RunStatus.ACTIVE:
            raise Conflict(
                "The run is still active; stop its browser first",
                code="run.active",
                details={"runId": str(run.id), "status": run.status},
            )
        keys = list((await s.execute(select(Artifact.object_key).where(Artifact.run_id == run.id))).scalars())
        # The rest goes by the foreign keys' ON DELETE CASCADE.
        await s.execute(sql_delete(Run).where(Run.id == run.id))
    store = make_store(ctx.settings)
    for key in keys:
        try:
            await store.delete(key)
        except Exception:
            log.warning("artifact_bytes_not_deleted", run_id=str(run.id), key=key)
    await asyncio.to_thread(shutil.rmtree, datadir.recording_frames(ctx.settings.data_dir, run.id), True)
    return run.id

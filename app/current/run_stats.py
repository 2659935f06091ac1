"""A run's stats in the current generation (`RunStats` on `GET /v1/runs` and `GET /v1/runs/{id}`): how
much its browser did, counted from its events and its recording, for a page of runs at once."""

from __future__ import annotations

from sqlalchemy import and_, case, func, or_, select

from app.core.context import AppContext
from app.current.event_shapes import FAILED_TYPES
from app.current.schemas import RunStats
from app.live.models import Recording
from app.runs.models import Run, RunEvent

# The event types a run's stats count: one index range of (run_id, type) per run and type.
_COUNTED = ("page.navigated", "network.request", "console.message", *FAILED_TYPES)


async def stats_of(ctx: AppContext, rows: list[Run]) -> dict:
    """Each run's `RunStats`, by run id: one grouped query over the counted types of the runs' events (the
    (run_id, type) index; only console messages and navigations have their data read) and one over their
    recordings, whatever the number of runs (a page of the list is at most 200)."""
    if not rows:
        return {}
    wanted = [run.id for run in rows]
    navigated = RunEvent.type == "page.navigated"
    console_error = and_(RunEvent.type == "console.message", RunEvent.data["level"].as_string() == "error")
    counts = (
        select(
            RunEvent.run_id,
            func.sum(case((and_(navigated, RunEvent.data["url"].as_string() != "about:blank"), 1), else_=0)),
            func.sum(case((RunEvent.type == "network.request", 1), else_=0)),
            func.sum(case((or_(RunEvent.type.in_(FAILED_TYPES), console_error), 1), else_=0)),
        )
        .where(RunEvent.run_id.in_(wanted), RunEvent.type.in_(_COUNTED))
        .group_by(RunEvent.run_id)
    )
    frames = select(Recording.run_id, Recording.frames, Recording.last_frame_ms).where(Recording.run_id.in_(wanted))
    async with ctx.db.read() as s:
        counted = {row[0]: row[1:] for row in (await s.execute(counts)).all()}
        recorded = {row[0]: row[1:] for row in (await s.execute(frames)).all()}
    out = {}
    for run in rows:
        pages, requests, errors = counted.get(run.id, (0, 0, 0))
        made, last_ms = recorded.get(run.id, (0, None))
        out[run.id] = RunStats(
            events=run.event_seq or 0,
            pages_visited=int(pages or 0),
            requests=int(requests or 0),
            errors=int(errors or 0),
            last_frame_at_ms=int(last_ms or 0) if made else None,
        )
    return out

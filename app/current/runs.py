"""`/v1/runs` in the current generation's shape (`BCTRL-Version` >= 2026-10-03; the flat routes serve the
same paths without it): list, get, and delete of an ended run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from app.accounts.auth import CtxDep, PrincipalDep
from app.core.errors import NotFound
from app.core.generation import CurrentRoute
from app.core.ids import parse_uuid
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.current import run_stats, shapes
from app.current.paths import ScopeSpace
from app.current.schemas import DeletedOut, Order, RunOut, RunPage
from app.live import frames
from app.runs import service as runs
from app.runs.models import Run, RunStatus
from app.runs.paths import PathRun
from app.runtimes.models import Runtime

# Out of /openapi.json, which describes the earlier shapes of these paths (one operation per path and
# method); the current generation's own document is not written yet (issue 13's note).
router = APIRouter(prefix="/v1/runs", tags=["runs (current)"], route_class=CurrentRoute, include_in_schema=False)
# Operations no earlier generation has on these paths answer whatever the header.
only_here = APIRouter(prefix="/v1/runs", tags=["runs (current)"])
routers = (router, only_here)

Page = Annotated[PageParams, Depends(page_params)]
# The current generation's run statuses, as the rows spell them.
_STATUS_ROWS = {
    "starting": [RunStatus.ACTIVE],
    "active": [RunStatus.ACTIVE],
    "stopping": [RunStatus.ACTIVE],
    "standby": [],
    "ended": [RunStatus.COMPLETED],
    "failed": [RunStatus.FAILED],
}


async def _runtimes(ctx, rows: list[Run]) -> dict:
    wanted = {run.runtime_id for run in rows}
    if not wanted:
        return {}
    async with ctx.db.read() as s:
        found = (await s.execute(select(Runtime).where(Runtime.id.in_(wanted)))).scalars()
        return {runtime.id: runtime for runtime in found}


@router.get("", response_model=RunPage, responses=errors(400, 404))
async def list_runs(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    status: Annotated[list[str] | None, Depends(multi("status", Literal[tuple(_STATUS_ROWS)]))],
    resource_id: Annotated[str | None, Query(alias="resourceId", max_length=64)] = None,
    resource_type: Annotated[Literal["browser", "sandbox"] | None, Query(alias="resourceType")] = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    include: Annotated[Literal["machineAccess"] | None, Query(description="machineAccess stays null here")] = None,
    order: Annotated[Order, Query()] = "desc",
) -> RunPage:
    """Runs of the account (or of the scoped space), newest first by default."""
    wanted = sorted({row for s in status or [] for row in _STATUS_ROWS[s]}) if status else None
    if (resource_id is not None and parse_uuid(resource_id) is None) or wanted == [] or resource_type == "sandbox":
        return RunPage(data=[], has_more=False)
    rows, cursor = await runs.list_runs(
        ctx,
        p,
        page,
        space_id=space.id if space else None,
        runtime_id=parse_uuid(resource_id) if resource_id else None,
        statuses=wanted,
        newest_first=order == "desc",
        created_from=created_from,
        created_to=created_to,
    )
    by_id = await _runtimes(ctx, rows)
    stats = await run_stats.stats_of(ctx, rows)
    items = [shapes.run_out(run, by_id.get(run.runtime_id)) for run in rows]
    for run, item in zip(rows, items, strict=True):
        item.stats = stats.get(run.id)
    if status:  # starting/active/stopping share one row status: keep only the words asked for
        items = [item for item in items if item.status in status]
    return RunPage(data=items, has_more=cursor is not None, next_cursor=cursor)


@router.get("/{run_id}", response_model=RunOut, responses=errors(404))
async def get_run(ctx: CtxDep, run: PathRun) -> RunOut:
    """The run, with its connections while its browser runs, and its usage."""
    runtime = (await _runtimes(ctx, [run])).get(run.runtime_id)
    connections = await shapes.connections_of(ctx, runtime, run) if runtime is not None else None
    out = shapes.run_out(run, runtime, connections)
    out.usage = await shapes.usage_of(ctx, run)
    out.stats = (await run_stats.stats_of(ctx, [run])).get(run.id)
    return out


@only_here.get(
    "/{run_id}/thumbnail",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The last recorded frame"}, **errors(404)},
)
async def run_thumbnail(ctx: CtxDep, run: PathRun) -> Response:
    """The run's last recorded frame (JPEG, the browser's viewport): while it runs, the newest one so far.
    404 `recording.not_found` when nothing was recorded (recording off, or the run deleted its frames)."""
    found = await frames.last_frame(ctx, run.id)
    if found is None:
        raise NotFound("The run has no recorded frame", code="recording.not_found", details={"runId": str(run.id)})
    # A run that ended keeps its last frame: a browser may keep it a while; one still going does not.
    cache = "private, max-age=3600" if run.status != RunStatus.ACTIVE else "no-store"
    if isinstance(found, bytes):  # read from the object store
        return Response(found, media_type="image/jpeg", headers={"Cache-Control": cache})
    return FileResponse(found, media_type="image/jpeg", headers={"Cache-Control": cache})


@only_here.delete("/{run_id}", response_model=DeletedOut, responses=errors(404, 409))
async def delete_run(ctx: CtxDep, run: PathRun) -> DeletedOut:
    """Delete an ended run and all it recorded (events, artifacts, recording); an active one is 409."""
    return DeletedOut(id=str(await runs.delete(ctx, run)))

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.core.auth import CtxDep, PrincipalDep
from app.core.ids import parse_uuid
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.responses import JSONResponse
from app.core.schemas import errors
from app.runs import service
from app.runs.schemas import EventList, RunList, RunOut, RunStatusLiteral

router = APIRouter(prefix="/v1/runs", tags=["runs"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("", response_model=RunList, responses=errors(400))
async def list_runs(
    ctx: CtxDep, p: PrincipalDep, page: Page,
    status: Annotated[list[str] | None, Depends(multi("status", RunStatusLiteral))],
    space_id: Annotated[str | None, Query(alias="spaceId")] = None,
    runtime_id: Annotated[str | None, Query(alias="runtimeId")] = None,
) -> RunList:
    """Runs of the account, oldest first; filter by space, runtime and status."""
    # An id that is not a UUID matches nothing rather than being an error.
    if (space_id and not parse_uuid(space_id)) or (runtime_id and not parse_uuid(runtime_id)):
        return RunList.of([], None)
    runs, cursor = await service.list_runs(
        ctx.db, p, page, statuses=status,
        space_id=parse_uuid(space_id) if space_id else None,
        runtime_id=parse_uuid(runtime_id) if runtime_id else None)
    return RunList.of(runs, cursor)


@router.get("/{run_id}", response_model=RunOut, responses=errors(404))
async def get_run(ctx: CtxDep, p: PrincipalDep, run_id: str,
                  include: Annotated[Literal["connection"] | None, Query()] = None):
    """`include=connection` adds the run's `connection` while the run is active (null otherwise)."""
    run = await service.get(ctx.db, p, run_id)
    if include != "connection":
        return RunOut.of(run)
    connection = await service.connection_of(ctx, run)
    return JSONResponse({**RunOut.of(run).model_dump(mode="json"),
                         "connection": connection.model_dump(mode="json") if connection else None})


@router.get("/{run_id}/events", response_model=EventList, responses=errors(400, 404))
async def list_events(
    ctx: CtxDep, p: PrincipalDep, run_id: str, page: Page,
    type: Annotated[list[str] | None, Depends(multi("type", str, "Event types, e.g. runtime.active"))],
    category: Annotated[list[str] | None, Depends(multi("category", str, "Event categories"))],
) -> EventList:
    """Events of a run in sequence order; `nextCursor` resumes after the last one returned."""
    events, cursor = await service.list_events(ctx.db, p, run_id, page, types=type, categories=category)
    return EventList.of(events, cursor)

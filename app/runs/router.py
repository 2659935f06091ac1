from __future__ import annotations

import uuid
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse

from app.accounts.auth import CtxDep, PrincipalDep
from app.accounts.liveness import while_key_valid
from app.connections import service as connections
from app.connections.schemas import RunWithConnection
from app.core.errors import Unauthorized
from app.core.ids import parse_uuid
from app.core.paging import CURSOR_PATTERN, MAX_CURSOR, PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.runs import service
from app.runs.paths import PathRun
from app.runs.schemas import (
    MAX_EVENT_WAIT_MS,
    ActivityCategory,
    ActivityPage,
    CommandPage,
    CommandStatus,
    EventCategory,
    EventList,
    EventOut,
    EventWaitOut,
    EventWaitRequest,
    RunList,
    RunOut,
    RunStatusLiteral,
)
from app.runs.streams import EventFilter

router = APIRouter(prefix="/v1/runs", tags=["runs"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("", response_model=RunList, responses=errors(400))
async def list_runs(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    status: Annotated[list[str] | None, Depends(multi("status", RunStatusLiteral))],
    space_id: Annotated[str | None, Query(alias="spaceId")] = None,
    runtime_id: Annotated[str | None, Query(alias="runtimeId")] = None,
) -> RunList:
    """Runs of the account, oldest first; filter by space, runtime and status."""
    # An id that is not a UUID matches nothing rather than being an error.
    if (space_id and not parse_uuid(space_id)) or (runtime_id and not parse_uuid(runtime_id)):
        return RunList.of([], None)
    runs, cursor = await service.list_runs(
        ctx,
        p,
        page,
        statuses=status,
        space_id=parse_uuid(space_id) if space_id else None,
        runtime_id=parse_uuid(runtime_id) if runtime_id else None,
    )
    return RunList.of(runs, cursor)


@router.get("/{run_id}", response_model=RunOut | RunWithConnection, responses=errors(404))
async def get_run(
    ctx: CtxDep, run: PathRun, include: Annotated[Literal["connection"] | None, Query()] = None
) -> RunOut | RunWithConnection:
    """`include=connection` adds the run's `connection` while the run is active (null otherwise)."""
    if include != "connection":
        return RunOut.of(run)
    connection = await connections.flat_connection_for_run(ctx, run)
    return RunWithConnection.of(run).model_copy(update={"connection": connection})


def event_filter(
    type: Annotated[list[str] | None, Depends(multi("type", str, "Event types, e.g. page.load"))],
    category: Annotated[list[EventCategory] | None, Depends(multi("category", EventCategory, "Categories"))],
    connection_id: Annotated[str | None, Query(alias="connectionId")] = None,
    page_id: Annotated[str | None, Query(alias="pageId", max_length=64)] = None,
) -> EventFilter:
    return EventFilter(
        types=tuple(type or ()),
        categories=tuple(category or ()),
        connection_id=_uuid_or_nothing(connection_id),
        page_id=page_id,
    )


def _uuid_or_nothing(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    # A connection id that is not a UUID matches no event (rather than being ignored).
    return parse_uuid(value) or uuid.UUID(int=0)


Filter = Annotated[EventFilter, Depends(event_filter)]


@router.get("/{run_id}/events", response_model=EventList, responses=errors(400, 404))
async def list_events(ctx: CtxDep, run: PathRun, page: Page, flt: Filter) -> EventList:
    """Events of a run in sequence order; `nextCursor` resumes after the last one returned."""
    events, cursor = await service.list_events(ctx, run, page, flt)
    return EventList.of(events, cursor)


@router.post("/{run_id}/events/wait", response_model=EventWaitOut, responses=errors(400, 404))
async def wait_event(ctx: CtxDep, run: PathRun, body: EventWaitRequest) -> EventWaitOut:
    """Long-poll (up to `timeoutMs`) for the next event matching the filters after `cursor`
    (default: after the newest event now). Pass the returned `cursor` to wait for the one after."""
    flt = EventFilter(
        types=tuple([*(body.type or ()), *(body.kind or ())]),
        categories=tuple(body.category or ()),
        connection_id=_uuid_or_nothing(body.connection_id),
        page_id=body.page_id,
    )
    used = min(body.timeout_ms, MAX_EVENT_WAIT_MS)
    event, cursor = await service.wait_event(ctx, run, flt, body.cursor, used)
    return EventWaitOut(
        event=EventOut.of(event) if event else None,
        timed_out=event is None,
        cursor=cursor,
        timeout_ms=used,
        timeout_clamped=used < body.timeout_ms,
    )


def _guarded(ctx, p, frames) -> EventSourceResponse:
    """The stream ends with an `error` frame once its key stops working (revoked, expired, archived)."""

    def refused(e: Unauthorized) -> dict:
        return {
            "event": "error",
            "data": orjson.dumps({"code": e.code, "message": e.message, "retryAfter": None}).decode(),
        }

    return EventSourceResponse(
        while_key_valid(ctx, p.key_id, frames, refused),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{run_id}/events/stream",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "SSE: run.event, heartbeat, run.ended"},
        **errors(400, 404),
    },
)
async def stream_events(
    ctx: CtxDep,
    p: PrincipalDep,
    run: PathRun,
    flt: Filter,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, pattern=CURSOR_PATTERN)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    """Server-sent events: `run.event` frames whose `id` is the resume cursor, a `heartbeat` every
    15 s while idle, and a final `run.ended`. `Last-Event-ID` (or `cursor`) resumes without gaps."""
    frames = service.follow(ctx, run, flt, last_event_id or cursor)
    return _guarded(ctx, p, frames)


@router.get("/{run_id}/stream", responses={200: {"content": {"text/event-stream": {}}}, **errors(400, 404)})
async def stream_run(
    ctx: CtxDep,
    p: PrincipalDep,
    run: PathRun,
    flt: Filter,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, pattern=CURSOR_PATTERN)] = None,
    after: Annotated[
        str | None, Query(max_length=MAX_CURSOR, pattern=CURSOR_PATTERN, description="Alias of cursor")
    ] = None,
    include: Annotated[list[str] | None, Query(description="`events` (trace is not served)")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    """The flat API's run stream (Python SDK `runs.stream`): the same frames as /events/stream."""
    frames = service.follow(ctx, run, flt, last_event_id or cursor or after)
    return _guarded(ctx, p, frames)


@router.get(
    "/{run_id}/activity", response_model=ActivityPage, response_model_exclude_unset=True, responses=errors(400, 404)
)
async def activity(
    ctx: CtxDep,
    run: PathRun,
    page: Page,
    categories: Annotated[list[str] | None, Depends(multi("categories", ActivityCategory, "Item categories"))],
    category: Annotated[list[str] | None, Depends(multi("category", ActivityCategory, "Alias of categories"))],
    level: Annotated[Literal["info", "warning", "error"] | None, Query(description="Minimum severity")] = None,
) -> dict:
    """A human-readable timeline of the run: navigations with their requests as children, console
    errors with their severity, lifecycle, connections, dialogs and downloads."""
    items, cursor, truncated = await service.activity(
        ctx, run, page, [*(categories or ()), *(category or ())] or None, level
    )
    # `truncated`: not the whole timeline (another page, capped requests, or past the first 50,000 events).
    return {"data": items, "activity": items, "nextCursor": cursor, "truncated": truncated}


@router.get(
    "/{run_id}/commands", response_model=CommandPage, response_model_exclude_unset=True, responses=errors(400, 404)
)
async def list_commands(
    ctx: CtxDep,
    run: PathRun,
    page: Page,
    status: Annotated[list[str] | None, Depends(multi("status", CommandStatus))],
    include: Annotated[
        list[str] | None, Depends(multi("include", Literal["request", "result", "error"], "Heavy fields to add"))
    ],
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    execution_mode: Annotated[Literal["inline", "durable"] | None, Query(alias="executionMode")] = None,
) -> dict:
    """Platform command records of the run (runtime start and stop, leases; invocations later).
    `request`, `result` and `error` are only included when asked for with `include`."""
    rows, cursor = await service.list_commands(ctx, run, page, status, order, set(include or ()))
    if execution_mode:
        rows = [r for r in rows if r["executionMode"] == execution_mode]
    return {"data": rows, "commands": rows, "nextCursor": cursor}

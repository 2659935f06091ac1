"""`/v1/events` (list, get, stream) and the typed frames of `/v1/runs/{id}/stream` in the current generation.

Events are the events the runs and the tasks record, in the current generation's words (`event_shapes.py`):
a task's events are found by `task` (a task's id, which is also an invocation's: both are command rows),
`conversation` and `agent`, with or without a browser. Filters that name what this server does not
have (`sandbox`) or an id that is not one match nothing: the answer is an empty page (a stream that only
sends heartbeats), as for a browser name that names no browser. The stream follows the same events: each
run's in its order, and each task's run-less events in theirs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse

from app.accounts.auth import CtxDep, PrincipalDep
from app.accounts.liveness import while_key_valid
from app.core.errors import RETRY_AFTER_SECONDS, InvalidRequest, NotFound, Unauthorized, backend_unavailable
from app.core.generation import CurrentRoute
from app.core.ids import parse_uuid
from app.core.paging import MAX_CURSOR, PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.current import event_shapes as shaped
from app.current import traces
from app.current.event_shapes import ActorType, EventChannel, EventOut, EventOutcome, EventPage
from app.current.paths import ScopeSpace
from app.current.schemas import Order
from app.runs import events_query, streams, trace
from app.runs.events_query import EventQuery, EventScope
from app.runs.models import RunEvent
from app.runs.paths import PathRun
from app.runs.streams import Beat
from app.runtimes import service as runtimes

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/events", tags=["events"])
# The run stream's path is the flat generation's too: this route answers current requests only.
run_stream = APIRouter(prefix="/v1/runs", tags=["runs (current)"], route_class=CurrentRoute, include_in_schema=False)
routers: tuple[APIRouter, ...] = (router, run_stream)

Page = Annotated[PageParams, Depends(page_params)]
_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_STREAM_RESPONSES = {200: {"content": {"text/event-stream": {}}, "description": "SSE: Event objects"}}


def _not_found(event_id: str) -> NotFound:
    return NotFound("Event not found", code="event.not_found", details={"eventId": event_id})


async def _scope_and_query(
    ctx: CtxDep,
    p: PrincipalDep,
    space: ScopeSpace,
    category: Annotated[list[str] | None, Depends(multi("category", shaped.EventCategory))],
    channel: Annotated[list[str] | None, Depends(multi("channel", EventChannel))],
    outcome: Annotated[list[str] | None, Depends(multi("outcome", EventOutcome))],
    type: Annotated[list[str] | None, Depends(multi("type", str, "Event types, e.g. page.load"))],
    browser: Annotated[str | None, Query(max_length=200, description="Browser id or name")] = None,
    sandbox: Annotated[str | None, Query(max_length=200, description="No sandboxes here: matches nothing")] = None,
    run: Annotated[str | None, Query(max_length=64)] = None,
    task: Annotated[str | None, Query(max_length=64, description="A task's (or an invocation's) id")] = None,
    conversation: Annotated[str | None, Query(max_length=200, description="A conversation's id")] = None,
    agent: Annotated[str | None, Query(max_length=200, description="An agent's id")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="Connection, invocation or viewer id")] = None,
    actor_type: Annotated[ActorType | None, Query(alias="actorType")] = None,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> tuple[EventScope, EventQuery]:
    nothing = sandbox is not None
    runtime_id = None
    if browser is not None:
        runtime_id = parse_uuid(browser)
        if runtime_id is None:  # a name: the browser it names now (a name that names none matches nothing)
            try:
                runtime_id = (await runtimes.find(ctx, p, browser, space)).id
            except NotFound:
                nothing = True
    run_id = None
    if run is not None:
        run_id = parse_uuid(run)
        nothing = nothing or run_id is None
    scope = EventScope(
        account_id=p.account_id, space_id=space.id if space else None, runtime_id=runtime_id, run_id=run_id
    )
    query = shaped.event_query(
        category=category,
        channel=channel,
        actor_type=actor_type,
        outcome=outcome,
        types=type,
        actor=actor,
        task=task,
        conversation=conversation,
        agent=agent,
        time_from=time_from,
        time_to=time_to,
        nothing=nothing,
    )
    return scope, query


Filters = Annotated[tuple[EventScope, EventQuery], Depends(_scope_and_query)]


@router.get("", response_model=EventPage, responses=errors(400, 404))
async def list_events(
    ctx: CtxDep, filters: Filters, page: Page, order: Annotated[Order, Query()] = "desc"
) -> EventPage:
    """Events of every run and task of the account (or of the scoped space), by time and id, newest first."""
    scope, query = filters
    rows, cursor = await events_query.list_events(ctx, scope, query, page, newest_first=order == "desc")
    return EventPage(data=[shaped.event_out(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


async def _event_stream(ctx, scope: EventScope, query: EventQuery, after: RunEvent | None):
    try:
        async for item in events_query.follow(ctx, scope, query, after=after):
            yield shaped.HEARTBEAT if isinstance(item, Beat) else shaped.event_frames(item)
    except Exception as exc:
        yield _stream_error(exc)


def _stream_error(exc: Exception) -> dict:
    unavailable = backend_unavailable(exc)
    if unavailable is None:
        log.exception("event_stream_failed")
        return shaped.error_frame("server.error", "Internal server error", RETRY_AFTER_SECONDS)
    log.warning("event_stream_backend_unavailable", code=unavailable.code)
    return shaped.error_frame(unavailable.code, unavailable.message, RETRY_AFTER_SECONDS)


def _refused_frame(error: Unauthorized) -> dict:
    """The last frame of a stream whose key stopped working (revoked, expired, archived): no retry."""
    body = {"code": error.code, "message": error.message, "reasonClass": "unauthorized", "requestId": None}
    return {**shaped.frame({"error": {**body, "details": error.details}}), "event": "error"}


def _guarded(ctx, p, frames) -> EventSourceResponse:
    return EventSourceResponse(while_key_valid(ctx, p.key_id, frames, _refused_frame), headers=_SSE_HEADERS)


@router.get("/stream", responses={**_STREAM_RESPONSES, **errors(400, 404)})
async def stream_events(
    ctx: CtxDep,
    p: PrincipalDep,
    filters: Filters,
    after: Annotated[str | None, Query(max_length=64, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
):
    """The same events as they are committed, each run's in its order (and each task's events without a
    browser in theirs); `Last-Event-ID` (or `after`) resumes after an event. Heartbeats are comments."""
    scope, query = filters
    resume = last_event_id or after
    point = await events_query.resume_point(ctx, scope, resume) if resume else None
    return _guarded(ctx, p, _event_stream(ctx, scope, query, point))


@router.get("/{event_id}", response_model=EventOut, responses=errors(404))
async def get_event(ctx: CtxDep, p: PrincipalDep, space: ScopeSpace, event_id: str) -> EventOut:
    """One event by its id."""
    scope = EventScope(account_id=p.account_id, space_id=space.id if space else None)
    found = await events_query.get_event(ctx, scope, event_id)
    if found is None:
        raise _not_found(event_id)
    return shaped.event_out(found)


# --- /v1/runs/{runId}/stream -----------------------------------------------------------------


class _Spans:
    """The run's spans as the stream last sent them: rebuilt from the records (`runs/trace.py`) when an
    event that starts, ends or adds a span passes, and compared by id."""

    def __init__(self, run) -> None:
        self.run = run
        self.sent: dict[str, tuple] = {}

    async def frames(self, ctx) -> list[dict]:
        out = []
        for span in (await trace.spans_of(ctx, self.run)).spans:
            state = (span.status, span.finished_at)
            before = self.sent.get(span.id)
            if before == state:
                continue
            wire = traces.trace_span_out(str(self.run.id), span).model_dump(mode="json", by_alias=True)
            if before is None:
                out.append(shaped.span_frame("span.started", self.run, wire, span.started_at))
            if span.finished_at is not None:
                out.append(shaped.span_frame("span.completed", self.run, wire, span.finished_at))
            elif before is not None:
                out.append(shaped.span_frame("span.updated", self.run, wire, None))
            self.sent[span.id] = state
        return out


async def _run_frames(ctx, run, after: int, include: set[str]):
    spans = _Spans(run) if "trace" in include else None
    try:
        if spans is not None:
            for frame in await spans.frames(ctx):
                yield frame
        async for item in streams.updates(ctx, run, after):
            if isinstance(item, list):
                if "events" in include:
                    yield shaped.runtime_event_frames(item, run)
                for row in item:
                    if row.type == "control.changed":
                        yield shaped.control_frame(row, run)
                if spans is not None and any(row.type in trace.SPAN_EVENT_TYPES for row in item):
                    for frame in await spans.frames(ctx):
                        yield frame
            elif isinstance(item, streams.Ended):
                if spans is not None:
                    spans.run = item.run or run
                    for frame in await spans.frames(ctx):
                        yield frame
                yield shaped.ended_frame(item.run or run)
            else:
                yield shaped.HEARTBEAT
    except Exception as exc:
        yield _stream_error(exc)


async def _run_position(ctx, run, resume: str | None) -> int:
    """The sequence number a run stream resumes after: from an event id of the run, or a flat cursor."""
    if not resume:
        return 0
    if parse_uuid(resume) is not None:
        scope = EventScope(account_id=run.account_id, run_id=run.id)
        found = await events_query.get_event(ctx, scope, resume)
        if found is None:
            raise InvalidRequest(
                "after / Last-Event-ID names no event of this run",
                details={"fields": [{"field": "after", "in": "query", "message": "unknown event", "type": "event_id"}]},
            )
        return found.event.seq
    return streams.seq_of(resume) or 0


@run_stream.get("/{run_id}/stream", responses={**_STREAM_RESPONSES, **errors(400, 404)})
async def stream_run(
    ctx: CtxDep,
    p: PrincipalDep,
    run: PathRun,
    include: Annotated[list[str] | None, Depends(multi("include", Literal["trace", "events"]))],
    after: Annotated[str | None, Query(max_length=MAX_CURSOR, description="Resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=MAX_CURSOR)] = None,
):
    """Typed frames of the run: `runtime.event` for each event in order (`include=events`), `span.started`,
    `span.updated` and `span.completed` as its trace grows (`include=trace`; both when not given),
    `control.changed` when its browser's controller changes, and a final `run.ended`."""
    position = await _run_position(ctx, run, last_event_id or after)
    wanted = set(include or ("events", "trace"))
    return _guarded(ctx, p, _run_frames(ctx, run, position, wanted))

"""`/v1/runs/{id}/trace` and `/v1/traces/{id}`: a run's spans (`app/runs/trace.py`) in the current
generation's two shapes: a page of trace spans, and the whole trace as OpenTelemetry spans.

A run's `traceId` is its id as 32 hex digits (`shapes.run_out`); `/v1/traces/{traceId}` also takes the
run id as written elsewhere. A task's `traceId` is likewise its id (a task is a command row, so an
invocation's id names its trace too): its trace is built from its events (`task_spans`), with or without
a browser: the task's span (queued to finished, from its row) is the root, with a span per step (from the
previous step to its `task.step` event), per LLM call (its `task.llm_call` event less its latency) and per
tool call (from `tool_call.started` to its end event), all under the task. The task and its steps and
LLM calls are built by `app/runs/trace.py`'s invocation spans (from `task.*` events), the same as an
invocation's (from `invocation.*` events). Span ids are the ids of the rows and events a span is built
from; an OpenTelemetry `spanId` is the last 16 hex digits of that id (the random part of a UUIDv7).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import and_, or_, select

from app.accounts.auth import CtxDep, PrincipalDep
from app.core import clock, ids
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, encode_cursor, page_params
from app.core.query import multi
from app.core.schemas import JsonObject, Timestamp, WireModel, errors
from app.current.schemas import Order, page_model
from app.runs import service as runs
from app.runs import trace
from app.runs.command_models import Command
from app.runs.models import RunEvent
from app.runs.paths import PathRun
from app.tasks import service as tasks

# Plain routers: no earlier generation serves these paths, so they answer whatever the header.
router = APIRouter(tags=["traces (current)"])
routers: tuple[APIRouter, ...] = (router,)

SpanKind = Literal["runtime", "agent", "tool", "llm", "browser", "network", "file", "system"]
SpanStatus = Literal["queued", "running", "awaiting_input", "succeeded", "failed", "canceled", "unknown"]
ResourceType = Literal["run", "runtime", "tool_call", "agent_turn", "message", "file", "artifact", "connection"]

# Our span kinds in the current generation's words: (trace span kind, OpenTelemetry span kind).
_KINDS: dict[str, tuple[str, str]] = {
    "run": ("runtime", "internal"),
    "command": ("system", "server"),
    "connection": ("browser", "server"),
    "invocation": ("agent", "internal"),
    "step": ("tool", "internal"),
    "llm_call": ("llm", "client"),
    "artifact": ("file", "internal"),
    "tool_call": ("tool", "internal"),
}
_RESOURCE_TYPES = {
    "run": "run",
    "command": "runtime",
    "connection": "connection",
    "invocation": "agent_turn",
    "step": "tool_call",
    "llm_call": "message",
    "artifact": "artifact",
    "tool_call": "tool_call",
}
_STATUSES = {"cancelled": "canceled"}


class TraceSpanOut(WireModel):
    id: str
    object: Literal["trace_span"] = "trace_span"
    run_id: str
    kind: SpanKind
    name: str
    status: SpanStatus
    parent_id: str | None = None
    resource_id: str | None = None
    resource_type: ResourceType | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    duration_ms: int | None = None
    data: JsonObject


TraceSpanPage = page_model(TraceSpanOut)


class Semconv(WireModel):
    gen_ai: str


class SpanOut(WireModel):
    span_id: str
    parent_span_id: str | None = None
    name: str
    kind: Literal["server", "internal", "client"]
    status: Literal["ok", "error"]
    start_time: Timestamp
    end_time: Timestamp
    attributes: dict[str, str | float | bool]
    event_ids: list[str]


class TraceOut(WireModel):
    object: Literal["trace"] = "trace"
    trace_id: str
    semconv: Semconv
    spans: list[SpanOut]


def trace_span_out(run_id: str, span: trace.Span) -> TraceSpanOut:
    """A span of `app/runs/trace.py` as the current generation's trace span (also what `span.*` stream
    frames carry)."""
    resource_type = _RESOURCE_TYPES[span.kind]
    if span.kind == "command" and span.name.startswith("connection."):
        resource_type = "connection"
    return TraceSpanOut(
        id=span.id,
        run_id=run_id,
        kind=_KINDS[span.kind][0],
        name=span.name,
        status=_STATUSES.get(span.status, span.status),
        parent_id=span.parent_id,
        resource_id=span.resource_id,
        resource_type=resource_type if span.resource_id is not None or span.kind in ("step", "llm_call") else None,
        started_at=span.started_at,
        finished_at=span.finished_at,
        duration_ms=span.duration_ms,
        data={**span.attributes, "eventIds": list(span.event_ids)},
    )


def _otel_id(span_id: str) -> str:
    parsed = ids.parse_uuid(span_id)
    return parsed.hex[16:] if parsed is not None else span_id


def span_out(span: trace.Span, now: datetime) -> SpanOut:
    attributes: dict[str, Any] = {**span.attributes, "bctrl.span.kind": _KINDS[span.kind][0]}
    if span.resource_id is not None:
        attributes["bctrl.resource.id"] = span.resource_id
    if span.finished_at is None:
        attributes["bctrl.span.in_progress"] = True  # endTime is required: a span under way ends "now"
    return SpanOut(
        span_id=_otel_id(span.id),
        parent_span_id=_otel_id(span.parent_id) if span.parent_id else None,
        name=span.name,
        kind=_KINDS[span.kind][1],
        status="error" if span.status == "failed" else "ok",
        start_time=span.started_at,
        end_time=span.finished_at or max(now, span.started_at),
        attributes=attributes,
        event_ids=list(span.event_ids),
    )


def _sort_key(span: TraceSpanOut) -> str:
    return f"{span.started_at.isoformat()}|{span.id}"


@router.get("/v1/runs/{run_id}/trace", response_model=TraceSpanPage, responses=errors(400, 404))
async def list_trace(
    ctx: CtxDep,
    run: PathRun,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[list[SpanKind] | None, Depends(multi("kind", SpanKind))],
    status: Annotated[list[SpanStatus] | None, Depends(multi("status", SpanStatus))],
    parent_id: Annotated[str | None, Query(alias="parentId", max_length=64)] = None,
    resource_type: Annotated[ResourceType | None, Query(alias="resourceType")] = None,
    order: Annotated[Order, Query(description="By start time and id; desc by default")] = "desc",
) -> TraceSpanPage:
    """The run's spans: the run, its commands, CDP sessions, invocations with their steps and LLM calls,
    and what it produced."""
    if page.after is not None and not isinstance(page.after, str):
        raise InvalidRequest(
            "cursor is not a value returned as nextCursor",
            details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
        )
    built = await trace.spans_of(ctx, run)
    spans = [trace_span_out(str(run.id), span) for span in built.spans]
    spans = [
        s
        for s in spans
        if (kind is None or s.kind in kind)
        and (status is None or s.status in status)
        and (parent_id is None or s.parent_id == parent_id)
        and (resource_type is None or s.resource_type == resource_type)
    ]
    spans.sort(key=_sort_key, reverse=order == "desc")
    if page.after is not None:
        spans = [s for s in spans if (_sort_key(s) < page.after if order == "desc" else _sort_key(s) > page.after)]
    chunk = spans[: page.limit]
    more = len(spans) > page.limit
    return TraceSpanPage(data=chunk, has_more=more, next_cursor=encode_cursor(_sort_key(chunk[-1])) if more else None)


def trace_not_found(trace_id: str) -> NotFound:
    return NotFound("Trace not found", code="trace.not_found", details={"traceId": trace_id[:64]})


# --- a task's trace -------------------------------------------------------------------------------

_TASK_SPAN_TYPES = ("task.step", "task.llm_call", "tool_call.started", "tool_call.awaiting_input")
_TOOL_CALL_ENDS = {"tool_call.succeeded": "succeeded", "tool_call.failed": "failed", "tool_call.canceled": "cancelled"}
_TASK_STATUSES = {"awaiting_input": "awaiting_input"}


async def task_spans(ctx, command: Command) -> list[trace.Span]:
    """The trace of a task (or invocation): its span, steps, LLM calls and tool calls, parents first."""
    owned = RunEvent.task_id == command.id
    if command.run_id is not None:  # an invocation's events are its run's, naming it in their data
        owned = or_(owned, and_(RunEvent.run_id == command.run_id, _invocation_id() == str(command.id)))
    wanted = (*_TASK_SPAN_TYPES, *_TOOL_CALL_ENDS, "invocation.step", "invocation.llm_call")
    async with ctx.db.read() as s:
        command = await s.get(Command, command.id) or command
        events = list(
            (
                await s.execute(
                    select(RunEvent)
                    .where(owned, RunEvent.type.in_(wanted))
                    .order_by(RunEvent.time, RunEvent.seq)
                    .limit(trace.EVENT_CAP)
                )
            ).scalars()
        )
    prefix = "task." if tasks.is_task(command) else "invocation."
    spans = trace.invocation_spans(None, command, [e for e in events if e.type.startswith(prefix)], prefix=prefix)
    task_span = spans[0]
    attributes = dict(task_span.attributes)
    if command.agent_id is not None:
        attributes["gen_ai.agent.id"] = str(command.agent_id)
    if command.conversation_id is not None:
        attributes["gen_ai.conversation.id"] = str(command.conversation_id)
    spans[0] = replace(
        task_span,
        status=_TASK_STATUSES.get(command.status, task_span.status),
        attributes=attributes,
        event_ids=tuple(str(e.id) for e in events if e.task_id == command.id or e.type.startswith("invocation.")),
    )
    spans += _tool_call_spans(spans[0], [e for e in events if e.type.startswith("tool_call.")], command)
    return trace.ordered(spans)


def _invocation_id():
    return RunEvent.data["invocationId"].as_string()


def _tool_call_spans(parent: trace.Span, events: list[RunEvent], command: Command) -> list[trace.Span]:
    """A span per tool call, from its `tool_call.started` event to its end event (open while it runs or
    awaits input; ended with the task if the task ended first)."""
    started: dict[str, RunEvent] = {}
    seen: dict[str, list[RunEvent]] = {}
    for event in events:
        call = (event.data or {}).get("toolCallId")
        if not isinstance(call, str):
            continue
        seen.setdefault(call, []).append(event)
        if event.type == "tool_call.started":
            started.setdefault(call, event)
    spans = []
    for call, first in started.items():
        data = first.data or {}
        tool = str(data.get("tool") or "tool")
        attributes: dict[str, trace.Attribute] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.id": call,
        }
        if isinstance(data.get("callerType"), str):
            attributes["bctrl.tool_call.caller_type"] = data["callerType"]
        status, finished = "running", None
        for event in seen[call]:
            if event.type == "tool_call.awaiting_input" and finished is None:
                status = "awaiting_input"
            elif event.type in _TOOL_CALL_ENDS:
                status, finished = _TOOL_CALL_ENDS[event.type], event.time
                error = (event.data or {}).get("error")
                if isinstance(error, dict):
                    attributes["error.type"] = str(error.get("code") or "tool_call.failed")
                    attributes["bctrl.error.message"] = str(error.get("message") or "")[:500]
        if finished is None and parent.finished_at is not None:
            status, finished = "cancelled" if command.status == "cancelled" else "failed", parent.finished_at
        spans.append(
            trace.Span(
                id=str(first.id),
                parent_id=parent.id,
                kind="tool_call",
                name=f"execute_tool {tool}",
                status=status,
                started_at=first.time,
                finished_at=finished,
                resource_id=call,
                attributes=attributes,
                event_ids=tuple(str(e.id) for e in seen[call]),
            )
        )
    return spans


async def _task_of(ctx, p, trace_id: uuid.UUID) -> Command | None:
    """The task (or invocation) a trace id names, if it is the caller's."""
    async with ctx.db.read() as s:
        row = await s.get(Command, trace_id)
    if row is None or row.account_id != p.account_id or row.execution_mode != "durable":
        return None
    return row


@router.get("/v1/traces/{trace_id}", response_model=TraceOut, responses=errors(404))
async def get_trace(ctx: CtxDep, p: PrincipalDep, trace_id: str) -> TraceOut:
    """A run's or a task's trace as OpenTelemetry spans, ordered by start time with parents before their
    children."""
    parsed = ids.parse_uuid(trace_id)
    if parsed is None:
        raise trace_not_found(trace_id)
    now = clock.now()
    try:
        run = await runs.get(ctx, p, str(parsed))
    except NotFound:
        task = await _task_of(ctx, p, parsed)
        if task is None:
            raise trace_not_found(trace_id) from None
        spans = await task_spans(ctx, task)
        return TraceOut(
            trace_id=task.id.hex,
            semconv=Semconv(gen_ai=trace.SEMCONV_GEN_AI),
            spans=[span_out(span, now) for span in spans],
        )
    built = await trace.spans_of(ctx, run)
    return TraceOut(
        trace_id=run.id.hex,
        semconv=Semconv(gen_ai=trace.SEMCONV_GEN_AI),
        spans=[span_out(span, now) for span in built.spans],
    )

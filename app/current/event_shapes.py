"""Run events in the current generation's words (the 0.3 wheel's `Event` and `RunStreamEvent` models),
and its event filters in ours.

Our events carry a category (runtime, lifecycle, connection, browser, network, console, artifact,
invocation, live), a type and a source. The current generation's `category`, `channel`, `source` and
actor type follow from our category alone (`_BY_CATEGORY`), so each of its filters on them is a set of
our categories; `outcome` follows from the type (`FAILED_TYPES`). Frames are built as plain dicts (a
stream may carry thousands a second); the wire models describe them for /openapi.json and the list.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

import orjson

from app.core import clock
from app.core.schemas import JsonObject, Timestamp, WireModel
from app.current import shapes
from app.current.schemas import page_model
from app.runs.events_query import EventQuery, Located
from app.runs.models import Run, RunEvent
from app.runtimes.models import Runtime

EventCategory = Literal[
    "lifecycle",
    "control",
    "machine",
    "human",
    "secrets",
    "connection",
    "alert",
    "agent",
    "page",
    "console",
    "network",
    "captcha",
    "vm",
    "kernel",
]
EventChannel = Literal[
    "api", "cdp", "webdriver", "live_view", "computer", "tool", "process", "ssh", "files", "platform"
]
EventOutcome = Literal["ok", "denied", "failed", "unknown"]
ActorType = Literal["api_key", "agent", "human", "platform"]

# Our category: (category, channel, source, actor type) in the current generation's words.
_BY_CATEGORY: dict[str, tuple[str, str, str, str]] = {
    "runtime": ("lifecycle", "platform", "runtime", "platform"),
    "lifecycle": ("lifecycle", "platform", "system", "platform"),
    "connection": ("connection", "cdp", "system", "api_key"),
    "browser": ("page", "cdp", "browser", "platform"),
    "network": ("network", "cdp", "network", "platform"),
    "console": ("console", "cdp", "browser", "platform"),
    "artifact": ("lifecycle", "files", "system", "platform"),
    "invocation": ("agent", "api", "agent", "agent"),
    "live": ("human", "live_view", "system", "human"),
}
_OTHER = ("lifecycle", "platform", "system", "platform")
# Events that record something that went wrong: outcome `failed`; every other event is `ok`.
FAILED_TYPES = (
    "runtime.failed",
    "runtime.state_restore_failed",
    "network.failed",
    "page.error",
    "invocation.failed",
    "invocation.timed_out",
    "recording.failed",
    "recording.encode_failed",
    "recording.storage_failed",
)
_FAILED = frozenset(FAILED_TYPES)


class EventActorOut(WireModel):
    type: ActorType
    id: str | None = None
    name: str | None = None


class EventTargetOut(WireModel):
    kind: str
    id: str | None = None


class EventOut(WireModel):
    id: str
    object: Literal["event"] = "event"
    type: str
    category: EventCategory
    channel: EventChannel
    source: Literal["browser", "network", "runtime", "agent", "tool", "system"]
    outcome: EventOutcome
    actor: EventActorOut
    target: EventTargetOut | None = None
    seq: int
    data: JsonObject
    run_id: str | None = None
    runtime_id: str | None = None
    space_id: str | None = None
    page_id: str | None = None
    sandbox_id: str | None = None
    task_id: str | None = None
    conversation_id: str | None = None
    span_id: str | None = None
    trace_id: str | None = None
    time: Timestamp
    timestamp: Timestamp
    created_at: Timestamp
    updated_at: Timestamp


EventPage = page_model(EventOut)


def _actor(event: RunEvent, actor_type: str) -> dict[str, Any]:
    data = event.data or {}
    if actor_type == "agent":
        return {"type": "agent", "id": data.get("invocationId")}
    if actor_type == "human":
        return {"type": "human", "id": data.get("viewerId")}
    if actor_type == "api_key":
        return {"type": "api_key", "id": str(event.connection_id) if event.connection_id else None}
    return {"type": "platform", "id": None}


def _target(event: RunEvent, runtime_id: str) -> dict[str, Any] | None:
    data = event.data or {}
    if event.category == "network":
        return {"kind": "request", "id": data.get("requestId")}
    if event.page_id is not None:
        return {"kind": "page", "id": event.page_id}
    if event.connection_id is not None:
        return {"kind": "connection", "id": str(event.connection_id)}
    if event.category == "artifact":
        return {"kind": "file", "id": data.get("artifactId")}
    if event.category == "invocation":
        return {"kind": "task", "id": data.get("invocationId")}
    if event.category == "live":
        return {"kind": "view", "id": data.get("viewerId")}
    return {"kind": "browser", "id": runtime_id}


_PLATFORM_ACTOR = {"type": "platform", "id": None}


class _RunWords:
    """What every event of one run shares, in wire form (computed once per run, not per event)."""

    __slots__ = ("run", "runtime", "space", "trace", "browser_target")

    def __init__(self, run_id, space_id, runtime_id) -> None:
        self.run = str(run_id)
        self.runtime = str(runtime_id)
        self.space = str(space_id)
        self.trace = run_id.hex
        self.browser_target = {"kind": "browser", "id": self.runtime}


def _event(event, words: _RunWords) -> dict[str, Any]:
    category, channel, source, actor_type = _BY_CATEGORY.get(event.category, _OTHER)
    when = clock.iso(event.time)
    data = event.data or {}
    if event.category == "network":
        target = {"kind": "request", "id": data.get("requestId")}
    elif event.page_id is None and event.connection_id is None and event.category in ("runtime", "lifecycle"):
        target = words.browser_target
    else:
        target = _target(event, words.runtime)
    return {
        "id": str(event.id),
        "object": "event",
        "type": event.type,
        "category": category,
        "channel": channel,
        "source": source,
        "outcome": "failed" if event.type in _FAILED else "ok",
        "actor": _PLATFORM_ACTOR if actor_type == "platform" else _actor(event, actor_type),
        "target": target,
        "seq": event.seq,
        "data": data,
        "runId": words.run,
        "runtimeId": words.runtime,
        "spaceId": words.space,
        "pageId": event.page_id,
        "taskId": data.get("invocationId") if event.category == "invocation" else None,
        "traceId": words.trace,
        "time": when,
        "timestamp": when,
        "createdAt": when,
        "updatedAt": when,
    }


def event_dict(event: RunEvent, space_id, runtime_id) -> dict[str, Any]:
    """The event as the current generation's `Event` (camelCase, timestamps as ISO strings)."""
    return _event(event, _RunWords(event.run_id, space_id, runtime_id))


def event_out(found: Located) -> EventOut:
    return EventOut.model_validate(event_dict(found.event, found.space_id, found.runtime_id))


# --- filters -----------------------------------------------------------------------------------


def _ours(position: int, wanted: list[str]) -> set[str]:
    return {ours for ours, words in _BY_CATEGORY.items() if words[position] in wanted}


def event_query(
    *,
    category: list[str] | None = None,
    channel: list[str] | None = None,
    actor_type: str | None = None,
    outcome: list[str] | None = None,
    types: list[str] | None = None,
    actor: str | None = None,
    task: str | None = None,
    time_from=None,
    time_to=None,
    nothing: bool = False,
) -> EventQuery:
    """The current generation's filters as an `EventQuery` over our categories and types."""
    categories: set[str] | None = None
    for position, wanted in ((0, category), (1, channel), (3, [actor_type] if actor_type else None)):
        if wanted:
            chosen = _ours(position, wanted)
            categories = chosen if categories is None else categories & chosen
    only_types: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    if outcome:
        wanted = set(outcome)
        if "ok" in wanted and "failed" not in wanted:
            exclude = FAILED_TYPES
        elif "failed" in wanted and "ok" not in wanted:
            only_types = FAILED_TYPES
        elif not wanted & {"ok", "failed"}:
            only_types = ()  # nothing here is denied, or of an unknown outcome
    return EventQuery(
        categories=tuple(sorted(categories)) if categories is not None else None,
        types=tuple(types or ()),
        exclude_types=exclude,
        only_types=only_types,
        actor=actor,
        invocation_id=task,
        time_from=time_from,
        time_to=time_to,
        nothing=nothing,
    )


# --- SSE frames ----------------------------------------------------------------------------------


def frame(data: dict[str, Any], id_: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"data": orjson.dumps(data).decode()}
    if id_ is not None:
        out["id"] = id_
    return out


HEARTBEAT = {"comment": "heartbeat"}


def _sse(data: dict[str, Any], id_: str) -> bytes:
    # orjson writes no newline, so the JSON is one `data:` line.
    return b"id: " + id_.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event_frames(found: list[Located]) -> bytes:
    """A page of events (of one run) as `Event` frames, written at once (id = the event id)."""
    out = []
    words = None
    for item in found:
        if words is None or words.run != str(item.event.run_id):
            words = _RunWords(item.event.run_id, item.space_id, item.runtime_id)
        body = _event(item.event, words)
        out.append(_sse(body, body["id"]))
    return b"".join(out)


# `runtime.event` frames are written as bytes from a template per page (the run's ids in place) and a
# few per-event parts: the same JSON, key for key, as `orjson.dumps` of the frame with `_event` as its
# event (tests/current/test_event_frames.py holds them equal), at a third of the cost a frame.
_FRAME = (
    b'id: %s\ndata: {"type":"runtime.event","id":"%s","runId":"@run","timestamp":"%s","event":{"id":"%s",'
    b'"object":"event",%s,"actor":%s,"target":%s,"seq":%d,"data":%s,"runId":"@run","runtimeId":"@runtime",'
    b'"spaceId":"@space","pageId":%s,"taskId":%s,"traceId":"@trace","time":"%s","timestamp":"%s",'
    b'"createdAt":"%s","updatedAt":"%s"}}\n\n'
)
_PLATFORM_ACTOR_JSON = orjson.dumps(_PLATFORM_ACTOR)
# (type, our category) -> `"type":..,"category":..,"channel":..,"source":..,"outcome":..` and the actor type.
_HEADS: dict[tuple[str, str], tuple[bytes, str]] = {}


def _head(type_: str, our_category: str) -> tuple[bytes, str]:
    found = _HEADS.get((type_, our_category))
    if found is None:
        category, channel, source, actor_type = _BY_CATEGORY.get(our_category, _OTHER)
        outcome = "failed" if type_ in _FAILED else "ok"
        words = {"type": type_, "category": category, "channel": channel, "source": source, "outcome": outcome}
        found = (orjson.dumps(words)[1:-1], actor_type)
        if len(_HEADS) < 4096:  # types are a small vocabulary; never grow without bound
            _HEADS[(type_, our_category)] = found
    return found


def _iso_bytes(value) -> bytes:
    """`clock.iso(value)` as bytes; a UTC value (as both backends hand them back) formatted directly."""
    if value.tzinfo is not UTC:
        return clock.iso(value).encode()
    return b"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 1000,
    )


def runtime_event_frames(events: list, run: Run) -> bytes:
    """A page of the run's events as `runtime.event` frames, written at once (id = the event id)."""
    words = _RunWords(run.id, run.space_id, run.runtime_id)
    template = (
        _FRAME.replace(b"@runtime", words.runtime.encode())
        .replace(b"@run", words.run.encode())
        .replace(b"@space", words.space.encode())
        .replace(b"@trace", words.trace.encode())
    )
    browser_target = orjson.dumps(words.browser_target)
    dumps = orjson.dumps
    out = []
    for event in events:
        id_ = str(event.id).encode()
        when = _iso_bytes(event.time)
        data = event.data or {}
        our_category = event.category
        head, actor_type = _head(event.type, our_category)
        if our_category == "network":
            target = b'{"kind":"request","id":' + dumps(data.get("requestId")) + b"}"
        elif event.page_id is None and event.connection_id is None and our_category in ("runtime", "lifecycle"):
            target = browser_target
        else:
            target = dumps(_target(event, words.runtime))
        out.append(
            template
            % (
                id_,
                id_,
                when,
                id_,
                head,
                _PLATFORM_ACTOR_JSON if actor_type == "platform" else dumps(_actor(event, actor_type)),
                target,
                event.seq,
                dumps(data),
                b"null" if event.page_id is None else dumps(event.page_id),
                dumps(data.get("invocationId")) if our_category == "invocation" else b"null",
                when,
                when,
                when,
                when,
            )
        )
    return b"".join(out)


def control_frame(run: Run, runtime: Runtime | None) -> dict[str, Any]:
    control = shapes.control_of(run, runtime)
    holder_id = runtime.controller_id if runtime is not None and control.holder != "none" else None
    return frame(
        {
            "type": "control.changed",
            "id": f"{run.id}:control:{control.epoch}:{control.holder}",
            "runId": str(run.id),
            "runtimeId": str(run.runtime_id),
            "holder": control.holder,
            "epoch": control.epoch,
            "by": holder_id,
            "reason": "taken" if control.holder != "none" else ("released" if run.finished_at is None else "run_ended"),
            "timestamp": clock.iso(control.since),
        }
    )


def ended_frame(run: Run) -> dict[str, Any]:
    return frame(
        {
            "type": "run.ended",
            "id": f"{run.id}:ended",
            "runId": str(run.id),
            "status": shapes.run_status(run, None),
            "endReason": run.end_reason,
            "timestamp": clock.iso(run.finished_at or clock.now()),
        }
    )


def span_frame(kind: str, run: Run, span: dict[str, Any], when) -> dict[str, Any]:
    """`span.started`, `span.updated` or `span.completed` with the span as `GET /v1/runs/{id}/trace` has it."""
    return frame(
        {
            "type": kind,
            "id": f"{span['id']}:{kind}",
            "runId": str(run.id),
            "span": span,
            "timestamp": clock.iso(when or clock.now()),
        }
    )


def error_frame(code: str, message: str, retry_seconds: int) -> dict[str, Any]:
    """The last frame of a stream that cannot go on: the current error envelope, and when to resume."""
    out = frame({"error": {"code": code, "message": message, "reasonClass": "server", "requestId": None}})
    out["event"] = "error"
    out["retry"] = retry_seconds * 1000
    return out

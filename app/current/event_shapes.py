"""Run events in the current generation's words (the 0.3 wheel's `Event` and `RunStreamEvent` models),
and its event filters in ours.

Our events carry a category (runtime, lifecycle, connection, browser, network, console, artifact,
invocation, live, task, tool_call), a type and a source. The current generation's `category`, `channel`, `source` and
actor type follow from our category alone (`_BY_CATEGORY`), so each of its filters on them is a set of
our categories; `outcome` follows from the type (`FAILED_TYPES`, `DENIED_TYPES`). Frames are built as plain dicts (a
stream may carry thousands a second); the wire models describe them for /openapi.json and the list.

An event of a task (`task.*`, `tool_call.*`; `task_id` set, with or without a run) names its task
(`taskId`), conversation and agent (the actor, type `agent`), and the task's trace (`traceId`, the task
id as 32 hex digits, `traces.py`); one without a run has no `runId`/`runtimeId` and its task's space.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

import orjson

from app.core import clock
from app.core.ids import parse_uuid
from app.core.schemas import JsonObject, Timestamp, WireModel
from app.current import shapes
from app.current.schemas import page_model
from app.runs.events_query import EventQuery, Located
from app.runs.models import Run, RunEvent

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
    # Changes of the browser's controller (app/runtimes/controller.py).
    "control": ("control", "platform", "system", "platform"),
    # What an API caller did inside the browser (app/browsing): pages, computer use, fetch, its files.
    "pages": ("page", "api", "browser", "api_key"),
    "computer": ("page", "computer", "browser", "api_key"),
    "fetch": ("network", "api", "network", "api_key"),
    "browser_files": ("lifecycle", "files", "system", "api_key"),
    # A task's life and steps (task.created/started/step/llm_call/awaiting_input/succeeded/failed/canceled)
    # and its tool calls (tool_call.started/awaiting_input/succeeded/failed/canceled), written by the
    # task runner (app/tasks) and the tool executors (app/toolcalls) with the task's ids.
    "task": ("agent", "api", "agent", "agent"),
    "tool_call": ("agent", "tool", "tool", "agent"),
}
_OTHER = ("lifecycle", "platform", "system", "platform")
# Events that record something that went wrong: outcome `failed`; every other event is `ok` (but below).
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
    "computer.failed",
    "fetch.failed",
    "task.failed",
    "tool_call.failed",
)
# Events that record something a rule refused: outcome `denied`.
DENIED_TYPES = ("network.blocked",)
_OUTCOMES = {**{t: "failed" for t in FAILED_TYPES}, **{t: "denied" for t in DENIED_TYPES}}
_NOT_OK = {"failed": FAILED_TYPES, "denied": DENIED_TYPES}


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
        agent_id = getattr(event, "agent_id", None)
        return {"type": "agent", "id": str(agent_id) if agent_id is not None else data.get("invocationId")}
    if actor_type == "human":
        return {"type": "human", "id": data.get("viewerId")}
    if actor_type == "api_key":
        # An API operation in the browser names its key (`actor`); a CDP connection names its lease.
        actor = data.get("actor") or (str(event.connection_id) if event.connection_id else None)
        return {"type": "api_key", "id": actor}
    return {"type": "platform", "id": None}


def _target(event: RunEvent, runtime_id: str | None) -> dict[str, Any] | None:
    data = event.data or {}
    if event.category == "tool_call":
        return {"kind": "tool_call", "id": data.get("toolCallId")}
    if event.category == "task":
        return {"kind": "task", "id": str(event.task_id) if event.task_id else None}
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
        # An event of a task without a run has neither run nor runtime (its space is the task's).
        self.run = str(run_id) if run_id is not None else None
        self.runtime = str(runtime_id) if runtime_id is not None else None
        self.space = str(space_id) if space_id is not None else None
        self.trace = run_id.hex if run_id is not None else None
        self.browser_target = {"kind": "browser", "id": self.runtime}


def _task_words(event, body: dict[str, Any]) -> dict[str, Any]:
    """An event of a task names the task, its conversation, and the task's trace."""
    body["taskId"] = str(event.task_id)
    if event.conversation_id is not None:
        body["conversationId"] = str(event.conversation_id)
    body["traceId"] = event.task_id.hex
    return body


def _event(event, words: _RunWords) -> dict[str, Any]:
    category, channel, source, actor_type = _BY_CATEGORY.get(event.category, _OTHER)
    when = clock.iso(event.time)
    data = event.data or {}
    if data.get("channel") == "tool":  # done through an MCP tool call (app/mcp)
        channel = "tool"
    if event.category == "network":
        target = {"kind": "request", "id": data.get("requestId")}
    elif event.page_id is None and event.connection_id is None and event.category in ("runtime", "lifecycle"):
        target = words.browser_target
    else:
        target = _target(event, words.runtime)
    body = {
        "id": str(event.id),
        "object": "event",
        "type": event.type,
        "category": category,
        "channel": channel,
        "source": source,
        "outcome": _OUTCOMES.get(event.type, "ok"),
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
    return body if getattr(event, "task_id", None) is None else _task_words(event, body)


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
    conversation: str | None = None,
    agent: str | None = None,
    time_from=None,
    time_to=None,
    nothing: bool = False,
) -> EventQuery:
    """The current generation's filters as an `EventQuery` over our categories and types; `task`,
    `conversation` and `agent` are ids (a task's is also its invocation's: a task is a command row), and
    one that is not an id matches nothing."""
    named = {"task": task, "conversation": conversation, "agent": agent}
    ids_of = {name: parse_uuid(value) if value is not None else None for name, value in named.items()}
    nothing = nothing or any(value is not None and ids_of[name] is None for name, value in named.items())
    categories: set[str] | None = None
    for position, wanted in ((0, category), (1, channel), (3, [actor_type] if actor_type else None)):
        if wanted:
            chosen = _ours(position, wanted)
            categories = chosen if categories is None else categories & chosen
    only_types: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    if outcome:
        wanted = set(outcome)
        if "ok" in wanted:  # every type but those of the outcomes not asked for
            exclude = tuple(t for word, types_of in _NOT_OK.items() if word not in wanted for t in types_of)
        else:  # only the types of the outcomes asked for (none is of an unknown outcome)
            only_types = tuple(t for word in sorted(wanted) for t in _NOT_OK.get(word, ()))
    return EventQuery(
        categories=tuple(sorted(categories)) if categories is not None else None,
        types=tuple(types or ()),
        exclude_types=exclude,
        only_types=only_types,
        actor=actor,
        time_from=time_from,
        time_to=time_to,
        nothing=nothing,
        task_id=ids_of["task"],
        conversation_id=ids_of["conversation"],
        agent_id=ids_of["agent"],
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
    words, key = None, None
    for item in found:
        if words is None or key != (item.event.run_id, item.space_id):
            words = _RunWords(item.event.run_id, item.space_id, item.runtime_id)
            key = (item.event.run_id, item.space_id)
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
        outcome = _OUTCOMES.get(type_, "ok")
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
        if event.task_id is not None or (event.data or {}).get("channel") == "tool":
            # A task's event names its task's ids and trace, a tool call's its channel: the plain way.
            body = _event(event, words)
            frame_body = {"type": "runtime.event", "id": body["id"], "runId": words.run, "timestamp": body["time"]}
            out.append(_sse({**frame_body, "event": body}, body["id"]))
            continue
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


def control_frame(row, run: Run) -> dict[str, Any]:
    """The `control.changed` frame of a `control.changed` event (app/runtimes/controller.py records one
    for every change of holder), so a resumed stream replays them like any event."""
    data = row.data or {}
    return frame(
        {
            "type": "control.changed",
            "id": str(row.id),
            "runId": str(run.id),
            "runtimeId": str(run.runtime_id),
            "holder": shapes.holder_word(data.get("kind")),
            "epoch": data.get("epoch", 0),
            "by": data.get("id"),
            "reason": data.get("reason"),
            "timestamp": clock.iso(row.time),
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

"""A run's trace: spans built from what the run already recorded (its row, its events and its commands).

Nothing is stored for a trace; `spans_of(ctx, run)` rebuilds it on every read, so it is always what the
records say. The spans, and where each comes from:

- `run`: the run itself, from its start to its end (the root; every other span's ancestor).
- `command`: a platform command the run recorded inline (`runtime.start`, `runtime.stop`,
  `connection.create`, `connection.revoke`), the span of its request.
- `connection`: one socket session of a CDP connection, from its `connection.attached` event to the
  matching `connection.detached` (several sockets on one lease are several sessions).
- `invocation`: hosted AI work (a durable command), queued to finished.
  - `step`: one action it took, from the previous step (or the invocation's start) to its
    `invocation.step` event.
  - `llm_call`: one model call, its `invocation.llm_call` event's time less its latency.
- `tool_call`: one call of a tool by a task, from its `tool_call.started` event to its end event.

A task (a durable command of its own, with or without a browser) has a trace of its own, rooted at its
span (`task_spans_of`): the same `invocation` span with its steps and LLM calls (read from its `task.step`
and `task.llm_call` events), and its tool calls, all under the task.
- `artifact`: something the run produced (an instant span at its `artifact.created` event).
- `step` of computer use: one action of an API caller (app/browsing/computer.py), from its start to its
  `computer.*` event; a batch's actions under the batch's span.

Span ids are the ids of the rows or events they are built from (stable across reads). A span still
under way has no `finished_at` and the status `running` (or `queued`). Attribute names follow the
OpenTelemetry GenAI semantic conventions (`SEMCONV_GEN_AI`) where one applies, `bctrl.*` otherwise.

A stream may call `spans_of` again when an event of `SPAN_EVENT_TYPES` arrives and compare the
spans by id (`Span.id`): a new id started, a changed `finished_at`/`status` ended or updated.
"""

from __future__ import annotations

import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.core.context import AppContext
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent, RunStatus

# The OpenTelemetry GenAI semantic conventions version the attribute names follow.
SEMCONV_GEN_AI = "1.37.0"

# What a span can be (`Span.kind`) and how it stands (`Span.status`).
KINDS = ("run", "command", "connection", "invocation", "step", "llm_call", "artifact", "tool_call")
# (`awaiting_input`: a task's span, and its tool call's, while it waits for a person's answer.)
STATUSES = ("queued", "running", "awaiting_input", "succeeded", "failed", "cancelled")

# Events that start, end or add a span: a reader rebuilding the trace live need rebuild only on these.
SPAN_EVENT_TYPES = frozenset(
    {
        "runtime.starting",
        "runtime.active",
        "runtime.stopped",
        "runtime.failed",
        "connection.created",
        "connection.attached",
        "connection.detached",
        "connection.revoked",
        "invocation.created",
        "invocation.started",
        "invocation.step",
        "invocation.llm_call",
        "invocation.succeeded",
        "invocation.failed",
        "invocation.cancelled",
        "invocation.timed_out",
        "artifact.created",
    }
)
# Computer-use actions of API callers (app/browsing/computer.py): each a `step` span, a batch's under it.
COMPUTER_EVENT_TYPES = frozenset(
    f"computer.{action}"
    for action in (
        *("screenshot", "click", "double_click", "move", "drag", "scroll", "type", "key", "wait", "cursor"),
        *("failed", "batch", "clipboard_read", "clipboard_write"),
    )
)
SPAN_EVENT_TYPES = SPAN_EVENT_TYPES | COMPUTER_EVENT_TYPES
# A trace is built from at most this many of the run's events (the oldest); `Trace.truncated` says so.
EVENT_CAP = 20_000

Attribute = str | int | float | bool


@dataclass(frozen=True)
class Span:
    id: str
    parent_id: str | None
    kind: str  # one of KINDS
    name: str
    status: str  # one of STATUSES
    started_at: datetime
    finished_at: datetime | None
    resource_id: str | None = None
    attributes: dict[str, Attribute] = field(default_factory=dict)
    # The run events this span was built from, oldest first.
    event_ids: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return max(0, round((self.finished_at - self.started_at).total_seconds() * 1000))


@dataclass(frozen=True)
class Trace:
    run_id: uuid.UUID
    spans: list[Span]  # by start time, parents before their children
    truncated: bool  # built from the first EVENT_CAP events only


async def spans_of(ctx: AppContext, run: Run) -> Trace:
    """The run's trace as it stands now (read in one short read transaction)."""
    async with ctx.db.read() as s:
        run = await s.get(Run, run.id) or run
        events = list(
            (
                await s.execute(
                    select(RunEvent)
                    .where(RunEvent.run_id == run.id, RunEvent.type.in_(SPAN_EVENT_TYPES))
                    .order_by(RunEvent.seq)
                    .limit(EVENT_CAP + 1)
                )
            ).scalars()
        )
        commands = list(
            (await s.execute(select(Command).where(Command.run_id == run.id).order_by(Command.sequence_no))).scalars()
        )
    truncated = len(events) > EVENT_CAP
    return Trace(run_id=run.id, spans=build(run, events[:EVENT_CAP], commands), truncated=truncated)


def build(run: Run, events: Sequence[RunEvent], commands: Iterable[Command]) -> list[Span]:
    """The spans of `run` from its events (oldest first) and commands; pure, for tests and streams."""
    root = _run_span(run, events)
    spans = [root]
    spans += _command_spans(root, commands, events)
    spans += _connection_spans(root, run, events)
    spans += _artifact_spans(root, events)
    spans += _computer_spans(root, events)
    return ordered(spans)


def _status_of_run(run: Run) -> str:
    return {RunStatus.COMPLETED: "succeeded", RunStatus.FAILED: "failed"}.get(run.status, "running")


def _run_span(run: Run, events: Sequence[RunEvent]) -> Span:
    attributes: dict[str, Attribute] = {"bctrl.runtime.id": str(run.runtime_id), "bctrl.recording": run.recording}
    if run.end_reason:
        attributes["bctrl.run.end_reason"] = run.end_reason
    if run.failure:
        attributes["error.type"] = str(run.failure.get("code", "run.failed"))
        attributes["bctrl.error.message"] = str(run.failure.get("message", ""))[:500]
    return Span(
        id=str(run.id),
        parent_id=None,
        kind="run",
        name="run",
        status=_status_of_run(run),
        started_at=run.started_at,
        finished_at=run.finished_at,
        resource_id=str(run.id),
        attributes=attributes,
        event_ids=tuple(str(e.id) for e in events if e.type.startswith("runtime.")),
    )


_COMMAND_STATUS = {
    "queued": "queued",
    "running": "running",
    "cancelling": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "failed",
    "cancelled": "cancelled",
}


def _command_spans(root: Span, commands: Iterable[Command], events: Sequence[RunEvent]) -> list[Span]:
    by_invocation: dict[str, list[RunEvent]] = defaultdict(list)
    for event in events:
        if event.type.startswith("invocation.") and (event.data or {}).get("invocationId"):
            by_invocation[event.data["invocationId"]].append(event)
    spans: list[Span] = []
    for command in commands:
        if command.execution_mode == "durable":
            spans += invocation_spans(root, command, by_invocation.get(str(command.id), []))
            continue
        attributes: dict[str, Attribute] = {"bctrl.command.sequence": command.sequence_no}
        resource = str(command.runtime_id)
        connection_id = (command.result or {}).get("connectionId") or (command.request or {}).get("connectionId")
        if command.entry_call.startswith("connection.") and connection_id:
            resource = str(connection_id)
        if command.error:
            attributes["error.type"] = str(command.error.get("code", "command.failed"))
        spans.append(
            Span(
                id=str(command.id),
                parent_id=root.id,
                kind="command",
                name=command.entry_call,
                status=_COMMAND_STATUS.get(command.status, "succeeded"),
                started_at=command.started_at or command.created_at,
                finished_at=command.finished_at,
                resource_id=resource,
                attributes=attributes,
            )
        )
    return spans


def invocation_spans(
    parent: Span | None, command: Command, events: Sequence[RunEvent], *, prefix: str = "invocation."
) -> list[Span]:
    """The span of a durable command (under `parent`, or the root of its own trace) and its steps and LLM
    calls, from its `<prefix>step` and `<prefix>llm_call` events (oldest first; others are passed over):
    "invocation." for an invocation's, "task." for a task's (whose step names the tools it called in
    `tools` and sums itself up in `summary`, where an invocation's has `action` and `reasoning`)."""
    step_type, llm_type = prefix + "step", prefix + "llm_call"
    request = command.request or {}
    model = request.get("model")
    status = _COMMAND_STATUS.get(command.status, "running")
    attributes: dict[str, Attribute] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": str(command.id),
        "bctrl.invocation.method": command.method or "",
        "bctrl.invocation.steps": command.step_count,
    }
    if command.provider:
        attributes["gen_ai.provider.name"] = command.provider
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    if command.error:
        attributes["error.type"] = str(command.error.get("code", "invocation.failed"))
        attributes["bctrl.error.message"] = str(command.error.get("message", ""))[:500]
    started = command.started_at or command.created_at
    invocation = Span(
        id=str(command.id),
        parent_id=parent.id if parent is not None else None,
        kind="invocation",
        name=f"invoke_agent {command.method}" if command.method else "invoke_agent",
        status=status,
        started_at=command.created_at,
        finished_at=command.finished_at,
        resource_id=str(command.id),
        attributes=attributes,
        event_ids=tuple(str(e.id) for e in events),
    )
    spans = [invocation]
    previous = started
    for event in events:
        data = event.data or {}
        if event.type == step_type:
            tools = data.get("tools") if isinstance(data.get("tools"), list) else ()
            action = str(data.get("action") or ",".join(str(t) for t in tools if t) or "step")
            step_attributes: dict[str, Attribute] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": action,
                "bctrl.step": int(data.get("step") or 0),
            }
            for key, name in (
                ("url", "url.full"),
                ("target", "bctrl.step.target"),
                ("reasoning", "bctrl.step.reasoning"),
            ):
                if isinstance(data.get(key), str):
                    step_attributes[name] = data[key][:1000]
            if (
                "bctrl.step.reasoning" not in step_attributes
                and isinstance(data.get("summary"), str)
                and data["summary"]
            ):
                step_attributes["bctrl.step.reasoning"] = data["summary"][:1000]
            spans.append(
                Span(
                    id=str(event.id),
                    parent_id=invocation.id,
                    kind="step",
                    name=f"execute_tool {action}",
                    status="succeeded",
                    started_at=min(previous, event.time),
                    finished_at=event.time,
                    attributes=step_attributes,
                    event_ids=(str(event.id),),
                )
            )
            previous = event.time
        elif event.type == llm_type:
            latency = data.get("latencyMs")
            latency = latency if isinstance(latency, int | float) and latency >= 0 else 0
            llm_attributes: dict[str, Attribute] = {"gen_ai.operation.name": "chat"}
            if command.provider:
                llm_attributes["gen_ai.provider.name"] = command.provider
            if isinstance(data.get("model"), str):
                llm_attributes["gen_ai.request.model"] = data["model"]
            for key, name in (
                ("inputTokens", "gen_ai.usage.input_tokens"),
                ("outputTokens", "gen_ai.usage.output_tokens"),
            ):
                if isinstance(data.get(key), int):
                    llm_attributes[name] = data[key]
            calls = data.get("toolCalls")
            if isinstance(calls, list) and calls:
                llm_attributes["bctrl.llm.tool_calls"] = ",".join(str(c) for c in calls)[:1000]
            spans.append(
                Span(
                    id=str(event.id),
                    parent_id=invocation.id,
                    kind="llm_call",
                    name=f"chat {data['model']}" if isinstance(data.get("model"), str) else "chat",
                    status="succeeded",
                    started_at=event.time - timedelta(milliseconds=latency),
                    finished_at=event.time,
                    attributes=llm_attributes,
                    event_ids=(str(event.id),),
                )
            )
    return spans


def _connection_spans(root: Span, run: Run, events: Sequence[RunEvent]) -> list[Span]:
    open_sessions: dict[Any, deque[RunEvent]] = defaultdict(deque)
    spans: list[Span] = []
    for event in events:
        if event.type == "connection.attached":
            open_sessions[event.connection_id].append(event)
        elif event.type == "connection.detached" and open_sessions[event.connection_id]:
            attached = open_sessions[event.connection_id].popleft()
            spans.append(_session(root, run, attached, event))
    for waiting in open_sessions.values():
        spans += [_session(root, run, attached, None) for attached in waiting]
    return spans


def _session(root: Span, run: Run, attached: RunEvent, detached: RunEvent | None) -> Span:
    attributes: dict[str, Attribute] = {"network.protocol.name": "cdp"}
    if attached.connection_id is not None:
        attributes["bctrl.connection.id"] = str(attached.connection_id)
    if isinstance((attached.data or {}).get("userAgent"), str):
        attributes["user_agent.original"] = attached.data["userAgent"][:500]
    finished, status = None, "running"
    if detached is not None:
        data = detached.data or {}
        finished, status = detached.time, "succeeded"
        for key, name in (("endedBy", "bctrl.connection.ended_by"), ("reason", "bctrl.connection.close_reason")):
            if isinstance(data.get(key), str) and data[key]:
                attributes[name] = data[key][:500]
        if isinstance(data.get("code"), int):
            attributes["bctrl.connection.close_code"] = data["code"]
        if data.get("reason") == "server_died":
            status = "failed"
            attributes["error.type"] = "connection.server_died"
    elif run.status != RunStatus.ACTIVE:
        # The run ended with the socket open: the session ended with it.
        finished, status = run.finished_at, "succeeded"
    return Span(
        id=str(attached.id),
        parent_id=root.id,
        kind="connection",
        name="cdp.session",
        status=status,
        started_at=attached.time,
        finished_at=finished,
        resource_id=str(attached.connection_id) if attached.connection_id else None,
        attributes=attributes,
        event_ids=(str(attached.id),) + ((str(detached.id),) if detached is not None else ()),
    )


def _artifact_spans(root: Span, events: Sequence[RunEvent]) -> list[Span]:
    spans = []
    for event in events:
        if event.type != "artifact.created":
            continue
        data = event.data or {}
        attributes: dict[str, Attribute] = {}
        for key, name in (("kind", "bctrl.artifact.kind"), ("name", "bctrl.artifact.name")):
            if isinstance(data.get(key), str):
                attributes[name] = data[key][:500]
        if isinstance(data.get("sizeBytes"), int):
            attributes["bctrl.artifact.size_bytes"] = data["sizeBytes"]
        spans.append(
            Span(
                id=str(event.id),
                parent_id=root.id,
                kind="artifact",
                name=f"artifact {data.get('kind') or 'file'}",
                status="succeeded",
                started_at=event.time,
                finished_at=event.time,
                resource_id=str(data["artifactId"]) if data.get("artifactId") else None,
                attributes=attributes,
                event_ids=(str(event.id),),
            )
        )
    return spans


def _computer_spans(root: Span, events: Sequence[RunEvent]) -> list[Span]:
    """A span per computer-use action, from its start (the event's time less its duration) to its event; a
    batch's actions (recorded before the batch's own event) under the batch's span."""
    spans: list[Span] = []
    in_batch: list[int] = []  # indexes in `spans` of actions waiting for their batch's event
    for event in events:
        if event.type not in COMPUTER_EVENT_TYPES:
            continue
        data = event.data or {}
        took = data.get("durationMs")
        took = took if isinstance(took, int | float) and took >= 0 else 0
        action = str(data.get("action") or event.type.removeprefix("computer."))
        attributes: dict[str, Attribute] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "computer",
            "bctrl.computer.action": action,
        }
        if event.page_id:
            attributes["bctrl.page.id"] = event.page_id
        error = data.get("error")
        if isinstance(error, dict):
            attributes["error.type"] = str(error.get("code", "computer.failed"))
            attributes["bctrl.error.message"] = str(error.get("message", ""))[:500]
        span = Span(
            id=str(event.id),
            parent_id=root.id,
            kind="step",
            name=f"execute_tool computer.{action}",
            status="failed" if error else "succeeded",
            started_at=event.time - timedelta(milliseconds=took),
            finished_at=event.time,
            attributes=attributes,
            event_ids=(str(event.id),),
        )
        if event.type == "computer.batch":
            for i in in_batch:
                spans[i] = replace(spans[i], parent_id=span.id)
            in_batch = []
        elif "batchIndex" in data:
            in_batch.append(len(spans))
        spans.append(span)
    return spans


def ordered(spans: list[Span]) -> list[Span]:
    """By start time, parents before their children (a child never sorts ahead of its parent)."""
    depth: dict[str, int] = {}
    by_id = {span.id: span for span in spans}

    def depth_of(span: Span) -> int:
        if span.id not in depth:
            parent = by_id.get(span.parent_id) if span.parent_id else None
            depth[span.id] = 0 if parent is None else depth_of(parent) + 1
        return depth[span.id]

    ordered = sorted(spans, key=lambda s: (s.started_at, depth_of(s), s.id))
    placed: set[str] = set()
    result: list[Span] = []
    pending: dict[str, list[Span]] = defaultdict(list)

    def place(span: Span) -> None:
        result.append(span)
        placed.add(span.id)
        for child in pending.pop(span.id, []):
            place(child)

    for span in ordered:
        if span.parent_id is None or span.parent_id in placed or span.parent_id not in by_id:
            place(span)
        else:
            pending[span.parent_id].append(span)
    for waiting in pending.values():  # parents missing from the list: keep the children anyway
        result.extend(waiting)
    return result

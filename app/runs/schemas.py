from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.paging import CURSOR_PATTERN, MAX_CURSOR
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel, list_model
from app.runs.models import Run, RunEvent

RunStatusLiteral = Literal["active", "completed", "failed"]
ActivityCategory = Literal["runtime", "browser", "network", "console", "file", "invocation", "system"]
CommandStatus = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled", "timed_out"]
EventCategory = Literal[
    "runtime", "connection", "browser", "network", "console", "artifact", "invocation", "live", "lifecycle"
]


class Failure(WireModel):
    code: str
    message: str


class RunCounts(WireModel):
    events: int


class RecordingFlag(WireModel):
    enabled: bool


class RunOut(WireModel):
    id: str
    runtime_id: str
    space_id: str
    runtime_type: str
    status: RunStatusLiteral
    failure: Failure | None
    counts: RunCounts
    recording: RecordingFlag
    created_at: Timestamp
    started_at: Timestamp
    finished_at: Timestamp | None
    duration_seconds: float | None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        return cls(
            id=str(run.id),
            runtime_id=str(run.runtime_id),
            space_id=str(run.space_id),
            runtime_type=run.runtime_type,
            status=run.status,
            failure=Failure(**run.failure) if run.failure else None,
            counts=RunCounts(events=run.event_seq),
            recording=RecordingFlag(enabled=run.recording),
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=duration,
        )


RunList = list_model(RunOut, "runs")


class EventOut(WireModel):
    id: str
    run_id: str
    seq: int
    time: Timestamp
    type: str
    category: str
    source: str
    connection_id: str | None
    page_id: str | None
    data: JsonObject

    @classmethod
    def of(cls, e: RunEvent) -> EventOut:
        return cls(
            id=str(e.id),
            run_id=str(e.run_id),
            seq=e.seq,
            time=e.time,
            type=e.type,
            category=e.category,
            source=e.source,
            connection_id=str(e.connection_id) if e.connection_id else None,
            page_id=e.page_id,
            data=e.data,
        )


EventList = list_model(EventOut, "events")


MAX_EVENT_WAIT_MS = 120_000


class EventWaitRequest(RequestModel):
    cursor: str | None = Field(
        default=None, max_length=MAX_CURSOR, pattern=CURSOR_PATTERN, description="Wait for an event after this one"
    )
    type: list[str] | None = Field(default=None, max_length=50)
    kind: list[str] | None = Field(default=None, max_length=50, description="Alias of type")
    category: list[EventCategory] | None = None
    connection_id: str | None = Field(default=None, max_length=64)
    context_id: str | None = Field(default=None, max_length=64, description="Accepted; not used for matching")
    page_id: str | None = Field(default=None, max_length=64)
    timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description=f"Waits at most {MAX_EVENT_WAIT_MS} ms; more is clamped (`timeoutClamped: true`)",
    )


class EventWaitOut(WireModel):
    event: EventOut | None
    timed_out: bool
    cursor: str
    timeout_ms: int = Field(description="How long the server waited at most")
    timeout_clamped: bool = Field(description="The asked timeoutMs was over the maximum and was clamped")


class ActivityItem(WireModel):
    """One line of the timeline. Navigation items also carry status, counts and their requests."""

    id: str
    time: str
    type: str
    category: ActivityCategory
    message: str
    severity: Literal["info", "warning", "error"]
    page_id: str | None = None
    parent_id: str | None = None
    data: JsonObject = Field(default_factory=dict)
    status: Literal["loading", "loaded"] | None = None
    duration_seconds: float | None = None
    requests: int | None = None
    failed_requests: int | None = None
    bytes: int | None = None
    children: list[ActivityItem] | None = None


class ActivityPage(WireModel):
    data: list[ActivityItem]
    activity: list[ActivityItem] = Field(description="Same list as `data`, under the resource name")
    next_cursor: str | None
    truncated: bool = Field(
        description="This answer is not the whole timeline: follow nextCursor for more "
        "items, a navigation lists only its first 500 requests, or the run has "
        "more events than the timeline is built from (50,000)"
    )


class CommandOut(WireModel):
    id: str
    run_id: str
    runtime_id: str
    space_id: str
    runtime_kind: Literal["browser"]
    sequence_no: int
    entry_call: str
    execution_mode: Literal["inline", "durable"]
    status: CommandStatus
    step_count: int
    artifact_count: int
    connector: str | None
    correlation_id: str | None
    progress: JsonObject | None
    metadata: JsonObject | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    last_heartbeat_at: str | None
    cancel_requested_at: str | None
    duration_ms: int | None
    request: JsonObject | None = Field(default=None, description="Only with include=request")
    result: JsonObject | None = Field(default=None, description="Only with include=result")
    error: JsonObject | None = Field(default=None, description="Only with include=error")


class CommandPage(WireModel):
    data: list[CommandOut]
    commands: list[CommandOut] = Field(description="Same list as `data`, under the resource name")
    next_cursor: str | None

"""`/v1/tasks` wire models (the 0.3 wheel's Task, TaskInput, TaskInputPart, InputRequest, TaskUsage).

A task is a durable command row; its internal statuses are spelled here in the current generation's
words: `cancelling` is still `running`, `timed_out` is `failed` (errorCode `task.timed_out`), `cancelled`
is `canceled`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.runs.command_models import Command

TaskStatus = Literal["queued", "running", "awaiting_input", "succeeded", "failed", "canceled"]
WIRE_STATUS = {
    "queued": "queued",
    "running": "running",
    "cancelling": "running",
    "awaiting_input": "awaiting_input",
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "failed",
    "cancelled": "canceled",
}
# The internal statuses each wire status stands for (a list filter).
STATUS_ROWS: dict[str, tuple[str, ...]] = {}
for _row, _wire in WIRE_STATUS.items():
    STATUS_ROWS.setdefault(_wire, ())
    STATUS_ROWS[_wire] += (_row,)

Ref = Annotated[str, Field(min_length=1, max_length=200)]


class TextPart(RequestModel):
    type: Literal["text"]
    text: Annotated[str, Field(max_length=200_000)]


class FilePart(RequestModel):
    type: Literal["file"]
    file_id: Annotated[str, Field(min_length=1, max_length=64)]


class JsonPart(RequestModel):
    type: Literal["json"]
    data: Any


InputPart = Annotated[TextPart | FilePart | JsonPart, Field(discriminator="type")]
TaskInput = (
    Annotated[str, Field(min_length=1, max_length=200_000)]
    | Annotated[list[InputPart], Field(min_length=1, max_length=100)]
)


class TaskCreate(RequestModel):
    agent: Ref = Field(description="The agent's id or name in the space")
    input: TaskInput
    conversation: Ref | None = Field(default=None, description="Continue this idle conversation")
    metadata: JsonObject | None = Field(
        default=None, description="Kept with the task; `browserId` names a running browser of the space to drive"
    )
    output_schema: JsonObject | None = Field(default=None, description="JSON Schema the output must match")
    space_id: Ref | None = None
    version: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Default: the promoted version")


class TaskInputBody(RequestModel):
    input: Any = Field(description="The answer to the request (requestId), or a message steering the task")
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class InputRequestOut(WireModel):
    id: str
    kind: Literal["question", "approval", "tool_result", "handoff", "login"]
    summary: str
    schema_: JsonObject | None = Field(default=None, alias="schema")
    expires_at: str
    view_url: str | None = None


class TaskUsageOut(WireModel):
    input_tokens: int
    output_tokens: int


class TaskArtifactOut(WireModel):
    file_id: str
    name: str
    content_type: str
    size_bytes: int


class TaskOut(WireModel):
    object: Literal["task"] = "task"
    id: str
    agent_id: str
    version: int
    version_id: str
    conversation_id: str
    space_id: str
    status: TaskStatus
    input: Any
    output: Any = None
    output_schema: JsonObject | None = None
    metadata: JsonObject | None = None
    input_request: InputRequestOut | None = None
    error_code: str | None = None
    error_message: str | None = None
    artifacts: list[TaskArtifactOut] = []
    runs: list[str]
    usage: TaskUsageOut
    trace_id: str | None = None
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    updated_at: Timestamp

    @classmethod
    def of(cls, row: Command) -> TaskOut:
        error = row.error or {}
        pending = row.input_request if row.status == "awaiting_input" else None
        return cls(
            id=str(row.id),
            agent_id=str(row.agent_id),
            version=row.agent_version or 0,
            version_id=str(row.agent_version_id),
            conversation_id=str(row.conversation_id),
            space_id=str(row.space_id),
            status=WIRE_STATUS.get(row.status, "running"),
            input=row.task_input,
            output=row.output,
            output_schema=row.output_schema,
            metadata=row.task_metadata,
            input_request=InputRequestOut.model_validate(pending) if pending else None,
            error_code=error.get("code"),
            error_message=error.get("message"),
            runs=list(row.run_ids or []),
            usage=TaskUsageOut(input_tokens=row.input_tokens or 0, output_tokens=row.output_tokens or 0),
            trace_id=row.trace_id,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            updated_at=row.updated_at or row.created_at,
        )

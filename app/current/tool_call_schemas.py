"""`/v1/tool-calls` and `POST /v1/tools/{toolRef}/calls` wire models (the 0.3 wheel's ToolCall union by
status, ToolCallError, ToolCallInputRequest, ToolCallListResponse and the calls.create body)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import page_model
from app.toolcalls.models import ToolCall

CallStatus = Literal["queued", "running", "awaiting_input", "succeeded", "failed", "canceled"]
CallerType = Literal["api", "agent", "system", "test"]
# Longest `wait` (seconds) a read or a create may block for.
MAX_WAIT_SECONDS = 60


class ToolCallErrorOut(WireModel):
    code: str
    message: str
    retryable: bool = False
    event_id: str | None = None


class InputRequestOut(WireModel):
    prompt: str
    schema_: dict[str, Any] = Field(alias="schema")
    expires_at: Timestamp
    handoff: bool
    view_url: str | None = None


class ToolCallOut(WireModel):
    object: Literal["tool_call"] = "tool_call"
    id: str
    status: CallStatus
    tool: str
    caller_type: CallerType
    task_id: str | None = None
    run_id: str | None = None
    runtime_id: str | None = None
    parent_id: str | None = None
    span_id: str | None = None
    input_request: InputRequestOut | None = None
    error: ToolCallErrorOut | None = None
    result_available: bool
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    updated_at: Timestamp

    @classmethod
    def of(cls, row: ToolCall) -> ToolCallOut:
        req = row.input_request
        return cls(
            id=str(row.id),
            status=row.status,
            tool=row.tool_name,
            caller_type=row.caller_type,
            task_id=_s(row.task_id),
            run_id=_s(row.run_id),
            runtime_id=_s(row.runtime_id),
            parent_id=_s(row.parent_id),
            span_id=row.span_id,
            input_request=(
                InputRequestOut(
                    prompt=req.get("prompt") or "",
                    schema=req.get("schema") or {},
                    expires_at=datetime.fromisoformat(req["expiresAt"].replace("Z", "+00:00")),
                    handoff=bool(req.get("handoff")),
                    view_url=req.get("viewUrl"),
                )
                if req
                else None
            ),
            error=ToolCallErrorOut(**_error(row.error)) if row.error else None,
            result_available=row.status == "succeeded",
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            updated_at=row.updated_at,
        )


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def _error(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": error.get("code") or "tool.outcome_unknown",
        "message": error.get("message") or "",
        "retryable": bool(error.get("retryable")),
        "event_id": error.get("eventId"),
    }


ToolCallPage = page_model(ToolCallOut)


class ToolCallCreate(RequestModel):
    input: dict[str, Any] = Field(description="The tool's input, valid against its inputSchema")
    runtime_id: str | None = Field(
        default=None,
        max_length=64,
        description="The browser a browser tool acts in (its controller is taken for the call)",
    )

"""Tables of this package: one row per tool execution (a task's or a person's), its lifecycle and audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType

ACTIVE = ("queued", "running", "awaiting_input")
FINISHED = ("succeeded", "failed", "canceled")


class ToolCall(Base):
    """A durable tool call. `input` is the call's input with every secret value left out (secrets.fill
    stores only the secret's reference and the selectors); `result` never holds a secret either.
    `input_request` is set while (and after) a `human.request` waited for a person; `response` is the
    answer they gave. Ids of the task, run and browser are plain columns (no foreign key): the record is
    an audit trail that outlives them."""

    __tablename__ = "tool_calls"
    __table_args__ = (
        Index("ix_tool_calls_account_created", "account_id", "created_at"),
        Index("ix_tool_calls_task_id", "task_id"),
        Index("ix_tool_calls_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    space_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None]
    runtime_id: Mapped[uuid.UUID | None]
    parent_id: Mapped[uuid.UUID | None]
    tool_name: Mapped[str] = mapped_column(String(200))
    custom_tool_id: Mapped[uuid.UUID | None]
    caller_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[dict[str, Any]]
    result: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None]
    input_request: Mapped[dict[str, Any] | None]
    response: Mapped[Any | None] = mapped_column(JSONType)
    responded_by: Mapped[dict[str, Any] | None]
    span_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None]
    # Touched by the executor while it runs (every HEARTBEAT_SECONDS): an active call whose heartbeat
    # stopped belongs to a process that died (`service.recover` ends it failed `tool.outcome_unknown`).
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType

# Statuses after which an invocation or a task holds nothing (its controller lock is released).
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled", "timed_out")
# Statuses of a durable row a server process is working on (heartbeat, lock renewal); `awaiting_input`
# is a task suspended on a person's answer: still live, not claimable.
LIVE_STATUSES = ("running", "cancelling", "awaiting_input")


class Command(Base):
    """A platform command record: a runtime action (start, stop, lease...), an invocation (hosted AI
    work, `execution_mode` durable) or a task (durable, `provider` "agent", `method` "task"): the
    invocation and task APIs read and write these same rows, run by the same worker. A task may have
    no browser (no run, no runtime; `sequence_no` 0)."""

    __tablename__ = "commands"
    __table_args__ = (
        UniqueConstraint("run_id", "sequence_no", name="uq_commands_run_seq"),
        # Every worker looks for queued invocations twice a second.
        Index("ix_commands_mode_status", "execution_mode", "status"),
        Index("ix_commands_task_agent", "account_id", "agent_id"),
        Index("ix_commands_task_conversation", "conversation_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    runtime_id: Mapped[uuid.UUID | None]
    sequence_no: Mapped[int] = mapped_column(BigInteger)
    entry_call: Mapped[str] = mapped_column(String(100))
    execution_mode: Mapped[str] = mapped_column(String(16))  # inline | durable
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Invocations only.
    provider: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str | None] = mapped_column(String(32))
    step_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    progress: Mapped[dict[str, Any] | None]
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    # The server process running it, and the controller lock token it holds.
    worker: Mapped[str | None] = mapped_column(String(64))
    lock_token: Mapped[str | None] = mapped_column(String(200))
    # Tasks only: the agent version it runs, the conversation it runs in, what it was given and gave.
    agent_id: Mapped[uuid.UUID | None]
    agent_version_id: Mapped[uuid.UUID | None]
    agent_version: Mapped[int | None] = mapped_column(Integer)
    conversation_id: Mapped[uuid.UUID | None]
    task_input: Mapped[Any] = mapped_column("input", JSONType, nullable=True)
    task_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    output_schema: Mapped[dict[str, Any] | None]
    output: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # The pending question to a person (wire InputRequest), while `awaiting_input`.
    input_request: Mapped[dict[str, Any] | None]
    input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Every run the task drove (a browser it was given, or one it launched), oldest first.
    run_ids: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    # Whether the task launched its browser itself (then it stops it when it ends).
    launched_browser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    trace_id: Mapped[str | None] = mapped_column(String(32))
    # What its run-less events' outbox rows were last ordered by (app/outbox/models.py `ordered_xact`).
    outbox_xact: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime | None]

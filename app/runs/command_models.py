from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

# Statuses after which an invocation holds nothing (its controller lock is released).
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled", "timed_out")


class Command(Base):
    """A platform command record: a runtime action (start, stop, lease...) or an invocation (hosted AI
    work, `execution_mode` durable): the invocation API reads and writes these same rows."""

    __tablename__ = "commands"
    __table_args__ = (
        UniqueConstraint("run_id", "sequence_no", name="uq_commands_run_seq"),
        # Every worker looks for queued invocations twice a second.
        Index("ix_commands_mode_status", "execution_mode", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    runtime_id: Mapped[uuid.UUID]
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

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class RunStatus:
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"

    ALL = (ACTIVE, COMPLETED, FAILED)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    # No foreign key: a run outlives the runtime row it ran on.
    runtime_id: Mapped[uuid.UUID] = mapped_column(index=True)
    runtime_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    recording: Mapped[bool] = mapped_column(Boolean, default=True)
    failure: Mapped[dict[str, Any] | None]
    # Why the run ended: the stop's reason (`stop requested`, `idle timeout`, ...) or the failure's code.
    end_reason: Mapped[str | None] = mapped_column(String(64))
    # The last sequence number handed to an event (and to a command) of this run.
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    command_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What its events' outbox rows were last ordered by (app/outbox/models.py `ordered_xact`).
    outbox_xact: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


def _set(column: str):
    """A partial index's condition: only the rows that have `column` (most events have no task)."""
    return {"postgresql_where": text(f"{column} IS NOT NULL"), "sqlite_where": text(f"{column} IS NOT NULL")}


class RunEvent(Base):
    """An event: of a run (`run_id`, numbered by the run's `seq`), of a task (`task_id`, a `commands`
    row; also `conversation_id` and `agent_id`), or of both. An event of a task that has no run is
    numbered by the task: its `seq` is one more than the task's last run-less event's."""

    __tablename__ = "run_events"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_run_events_run_seq"),
        Index("ix_run_events_run_type", "run_id", "type"),
        Index("ix_run_events_time", "time"),
        Index(
            "uq_run_events_task_seq",
            "task_id",
            "seq",
            unique=True,
            postgresql_where=text("run_id IS NULL"),
            sqlite_where=text("run_id IS NULL"),
        ),
        Index("ix_run_events_task_time", "task_id", "time", **_set("task_id")),
        Index("ix_run_events_conversation_time", "conversation_id", "time", **_set("conversation_id")),
        Index("ix_run_events_agent_time", "agent_id", "time", **_set("agent_id")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # The task (a `commands` row) the event is of; its conversation and agent (no foreign keys: a
    # conversation or agent deleted keeps its tasks' history).
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("commands.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[uuid.UUID | None]
    page_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]

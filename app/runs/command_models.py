from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class Command(Base):
    """A platform command record: a runtime action (start, stop, lease...) or, later, an invocation."""

    __tablename__ = "commands"
    __table_args__ = (UniqueConstraint("run_id", "sequence_no", name="uq_commands_run_seq"),)

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

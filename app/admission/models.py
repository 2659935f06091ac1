"""Tables of admission: the queue of browser starts waiting for a slot."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class AdmissionTicket(Base):
    """One start waiting for a slot. A row, not a process's memory: every server process sees the same
    queue and a restart loses nothing. Admitted: the row is deleted in the transaction that opens the run."""

    __tablename__ = "admission_tickets"
    __table_args__ = (Index("ix_admission_tickets_pool_seq", "driver", "location", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Order of arrival (FIFO), handed out under the admission lock: one more than the largest in the queue.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    runtime_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runtimes.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    # The slot pool it waits for.
    driver: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(32))
    # The server process whose request waits (host:pid), for operators reading the table.
    owner: Mapped[str] = mapped_column(String(128))
    enqueued_at: Mapped[datetime]
    # Refreshed by the waiting process at every look; a row not refreshed for the TTL is of a dead process.
    heartbeat_at: Mapped[datetime]
    # When its request stops waiting; past it the row is dropped whoever finds it.
    deadline: Mapped[datetime]

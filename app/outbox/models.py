"""Tables of outbox: one row per event (`run_events`), written in the event's own transaction.

`position` is taken at insert time, so on PostgreSQL a row with a lower position can commit after one
with a higher position. `xact` is the writing transaction's id (`pg_current_xact_id()`, set by the
column's default, which the migration declares on PostgreSQL only; 0 on SQLite, which has one writer at a
time, so there position order is commit order). Readers go in (xact, position) order and only up to the
oldest transaction still in flight (app/outbox/service.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

# BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
Position = BigInteger().with_variant(Integer(), "sqlite")


class OutboxRow(Base):
    __tablename__ = "outbox"
    # AUTOINCREMENT on SQLite: a position is never reused once pruning has deleted the newest rows.
    __table_args__ = (Index("ix_outbox_xact_position", "xact", "position"), {"sqlite_autoincrement": True})

    position: Mapped[int] = mapped_column(Position, primary_key=True, autoincrement=True)
    xact: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # No foreign key: pruning old events must not wait on this table, and a reader joins the event (an
    # event deleted meanwhile is simply not read).
    event_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID]
    category: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

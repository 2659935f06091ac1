"""Tables of outbox: one row per event (`run_events`), written in the event's own transaction.

`position` is taken at insert time, so on PostgreSQL a row with a lower position can commit after one
with a higher position. `xact` is the writing transaction's id (`pg_current_xact_id()`, set by the
column's default, which the migration declares on PostgreSQL only; 0 on SQLite, which has one writer at a
time, so there position order is commit order). Readers go in (xact, position) order and only up to the
oldest transaction still in flight (app/outbox/service.py).

Within one run (or one task's run-less events) that order must be the events' sequence order. Sequence
numbers are taken under the owner's row lock, but a transaction's id is taken at its first write, which
may come before it waits for that lock: a transaction with a lower id can number its events after one
with a higher id. So an event's row does not carry the bare transaction id but `ordered_xact`: the
greater of it and the value the owner's previous events were given, kept on the owner's row under the
same lock. That value is never below the row's own transaction id, so a row still never shows behind a
reader's cursor, and within an owner it never decreases as the sequence grows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

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


class ordered_xact(FunctionElement):
    """`SET outbox_xact = ordered_xact(outbox_xact)` on an owner's row (a run's or a task's), in the
    statement that numbers its events: the greater of the column and this transaction's id on
    PostgreSQL, the column unchanged (0) on SQLite. The outbox rows of those events take the result."""

    type = BigInteger()
    inherit_cache = True
    name = "ordered_xact"


@compiles(ordered_xact)
def _ordered_xact_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(ordered_xact, "postgresql")
def _ordered_xact_postgresql(element, compiler, **kw):
    return f"GREATEST({compiler.process(element.clauses, **kw)}, pg_current_xact_id()::text::bigint)"

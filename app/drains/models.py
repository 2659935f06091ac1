"""Tables of drains and notification recipients.

A drain exports its account's events (read from the outbox, app/outbox) to one destination. Its place
in the outbox is a cursor pair (`cursor_xact`, `cursor_position`), moved only after a batch was
delivered. `lease_owner`/`lease_until` let one server process at a time work a drain (any replica may).
`destination` keeps the type's fields as the API names them; credentials there are vault references
(`secret:<path>#field`), and literal OTLP header values are kept sealed (`headers_sealed`). An `https`
drain's signing secret is sealed in `secret_sealed` and shown once, at create."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class Drain(Base):
    __tablename__ = "drains"
    __table_args__ = (Index("ix_drains_account_created", "account_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # https | otlp | s3 | r2: fixed at create
    destination: Mapped[dict[str, Any]] = mapped_column(JSONType)
    headers_sealed: Mapped[str | None] = mapped_column(Text)
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean)
    cursor_xact: Mapped[int] = mapped_column(BigInteger)
    cursor_position: Mapped[int] = mapped_column(BigInteger)
    # A failed batch's last event (its outbox cursor): the retry sends exactly that batch again.
    pending_xact: Mapped[int | None] = mapped_column(BigInteger)
    pending_position: Mapped[int | None] = mapped_column(BigInteger)
    events_sent: Mapped[int] = mapped_column(BigInteger)
    bytes_sent: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer)  # consecutive failed attempts of the batch at the cursor
    last_delivery_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationRecipient(Base):
    """Where a person would be told of an input request (email, SMS, WhatsApp). Stored and listed; this
    server sends no messages itself (docs/decisions.md)."""

    __tablename__ = "notification_recipients"
    __table_args__ = (
        Index("uq_notification_recipients_value", "account_id", "type", "value", unique=True),
        Index("ix_notification_recipients_account_created", "account_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

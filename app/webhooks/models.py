"""Tables of webhooks: endpoints, their deliveries (one per endpoint and event), and the fan-out's cursor.

A webhook's signing secret is kept sealed (`secret_sealed`); after a rotation the previous one keeps
signing too until `previous_secret_until`. Deleting a webhook marks it (`deleted_at`): its delivery
records stay readable in the database, its pending deliveries are cancelled.

A delivery keeps the exact body it sends (the event as rendered at fan-out), so every attempt sends the
same bytes under the same `webhook-id` (the delivery id) whatever happens to the event meanwhile.
`status`: pending (due at `next_attempt_at`), sending (claimed by a process until `lease_until`), sent,
failed (gave up), cancelled (its webhook was deleted or disabled)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType

ACTIVE = ("pending", "sending")


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool]
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),
        Index(
            "ix_webhook_deliveries_active",
            "webhook_id",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer)
    # The current round of attempts (since it was queued or redelivered), for the give-up rule.
    round_attempts: Mapped[int] = mapped_column(Integer)
    queued_at: Mapped[datetime]
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    # Set by each claim: a process that lost its lease (and so its claim) writes no result over a newer one.
    claim: Mapped[uuid.UUID | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDispatch(Base):
    """One row (id 1): how far the fan-out has read the outbox."""

    __tablename__ = "webhook_dispatch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cursor_xact: Mapped[int] = mapped_column(BigInteger)
    cursor_position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]

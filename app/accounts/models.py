from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class AccountStatus:
    ACTIVE = "active"
    ARCHIVED = "archived"  # a subaccount archived: its keys stop working, its records stay


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # The current generation's account settings: `{"accent", "logo", "productName", "showPoweredBy"}`.
    branding: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime | None]
    # Quotas in the current generation's words (`maxActiveRuns`, `maxSpaces`, `monthlyCreditLimit`);
    # null or a missing key: the deployment's default. Admission reads `maxActiveRuns`.
    limits: Mapped[dict[str, Any] | None]
    # A subaccount's parent (null: a top-level account). One level only: a subaccount has no children.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE, server_default="active")
    archived_at: Mapped[datetime | None]
    # The parent's own identifier for the tenant (a customer id, ...), searchable with `externalId=`.
    external_id: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # First characters of the key, safe to show, so a user can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # After this instant the key no longer authenticates (null: never).
    expires_at: Mapped[datetime | None]
    # Written at most once a minute per key and process (app/accounts/usage.py), not on every request.
    last_used_at: Mapped[datetime | None]
    usage_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime | None]
    # What the key may do (app/accounts/scopes.py); null or empty: everything its account may.
    scopes: Mapped[list[str] | None] = mapped_column(JSONType)

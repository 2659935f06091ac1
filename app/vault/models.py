"""Tables of the secrets vault: a secret (its current version's fields), every version, and the audit
trail of reads of values (reveals by people, fills by tasks) and writes. Secret fields are kept sealed
(app/vault/crypto.py) and never in plain; the audit never holds a value."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType

# The fields kept sealed, in their wire words.
SEALED_FIELDS = ("password", "totp", "value", "notes")


class VaultSecret(Base):
    """A secret at a path of its account (unique among the account's secrets), with the fields of its
    current version. `username`, `label` and `origins` are readable; the others are sealed."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("account_id", "path"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(512))
    origins: Mapped[list[Any]] = mapped_column(JSONType)
    password_sealed: Mapped[str | None] = mapped_column(Text)
    totp_sealed: Mapped[str | None] = mapped_column(Text)
    value_sealed: Mapped[str | None] = mapped_column(Text)
    notes_sealed: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class VaultSecretVersion(Base):
    """One version of a secret: the whole of its fields as they were written (sealed alike)."""

    __tablename__ = "secret_versions"
    __table_args__ = (UniqueConstraint("secret_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    secret_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("secrets.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(512))
    origins: Mapped[list[Any]] = mapped_column(JSONType)
    password_sealed: Mapped[str | None] = mapped_column(Text)
    totp_sealed: Mapped[str | None] = mapped_column(Text)
    value_sealed: Mapped[str | None] = mapped_column(Text)
    notes_sealed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class VaultAudit(Base):
    """Who read or changed which secret, when, and how (never a value). Kept when the secret is deleted:
    it names the secret by id and path, not by a foreign key."""

    __tablename__ = "secret_audit"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    secret_id: Mapped[uuid.UUID] = mapped_column(index=True)
    path: Mapped[str] = mapped_column(String(512))
    version: Mapped[int | None] = mapped_column(Integer)
    # create, update, delete, reveal, fill, fill_refused
    action: Mapped[str] = mapped_column(String(32))
    # {"kind": "api_key", "keyId": ...} or {"kind": "task", "taskId": ..., ...}
    actor: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # what was revealed or filled (field names only) and, for a fill, the page's origin
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class StorageFile(Base):
    """A file in a space's storage (uploaded, collected from a runtime, or an export)."""

    __tablename__ = "storage_files"
    __table_args__ = (UniqueConstraint("space_id", "path", name="uq_storage_files_space_path"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(4096))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Where the bytes are in the object store; never on the wire.
    object_key: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(16))  # upload | runtime | export
    run_id: Mapped[uuid.UUID | None]
    runtime_id: Mapped[uuid.UUID | None]
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]

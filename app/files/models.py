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


class RunInput(Base):
    """A space file bound to a run as one of its inputs: a copy kept in the run's browser file area at
    `runtime_path`, `state` telling whether the copy is there (`ready`) or could not be made (`failed`)."""

    __tablename__ = "run_inputs"
    __table_args__ = (UniqueConstraint("run_id", "file_id", name="uq_run_inputs_run_file"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    # Deleting the space file ends the binding: the run no longer has that input.
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("storage_files.id", ondelete="CASCADE"), index=True)
    runtime_path: Mapped[str] = mapped_column(String(4096))  # relative to the runtime's file area
    state: Mapped[str] = mapped_column(String(16))  # ready | failed
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

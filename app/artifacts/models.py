from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class ArtifactKind:
    DOWNLOAD = "download"
    SCREENSHOT = "screenshot"
    RECORDING = "recording"
    COLLECTED = "collected"
    EXPORT = "export"
    REPORT = "report"

    ALL = (DOWNLOAD, SCREENSHOT, RECORDING, COLLECTED, EXPORT, REPORT)


class Artifact(Base):
    """Something a run produced: a download, a screenshot, a recording, a collected file, an export."""

    __tablename__ = "artifacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    runtime_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(512))
    # The storage file that holds the same bytes, when the artifact was also saved to space storage.
    file_id: Mapped[uuid.UUID | None]
    path: Mapped[str | None] = mapped_column(String(4096))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime]

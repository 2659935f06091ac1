from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class RecordingStatus:
    NOT_AVAILABLE = "not_available"
    PREPARING = "preparing"  # the run is active and frames are being kept
    PROCESSING = "processing"  # the run ended; the video is being made
    READY = "ready"
    FAILED = "failed"


class Recording(Base):
    """A run's recording: its frames on disk (data dir `recordings/<run id>/`) and, once made, a video artifact."""

    __tablename__ = "recordings"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    frames: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Milliseconds from the run's start to its last frame.
    last_frame_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[dict[str, Any] | None]
    artifact_id: Mapped[uuid.UUID | None]
    video_format: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Viewer(Base):
    """A minted live or replay link. The link itself is a signed token; this row lets it be revoked early."""

    __tablename__ = "viewers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "live" or "replay"
    control: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

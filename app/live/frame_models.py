"""Tables of a recording's frames when they live in the object store (app/live/frames.py), and of the
recorders that wrote them (one per process that recorded a part of the run: the first, then any that
adopted the run), so a recording continued elsewhere knows where to carry on and where it has a hole."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class RecordingSegment(Base):
    """A stored object holding frames `first_seq..last_seq` back to back; `frames` lists each one's
    `[t, size]` (t: ms since the run started), so a frame is a byte range of the object.

    No foreign key on the run: when a run is deleted its segment rows stay until the sweep has deleted
    their objects (app/live/frames.py: purge_deleted)."""

    __tablename__ = "recording_segments"

    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_ms: Mapped[int] = mapped_column(BigInteger)
    frames: Mapped[list[list[int]]] = mapped_column(JSONType)
    object_key: Mapped[str] = mapped_column(String(128))
    bytes: Mapped[int] = mapped_column(BigInteger)
    writer: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class RecordingWriter(Base):
    """One recorder of a run, in the order they took it (`ordinal`). A writer that stopped cleanly has
    `stopped_ms`; the next one records the hole between the previous writer's end (its `stopped_ms`, or
    the last frame it stored when it died) and its own start as `gap_from_ms`..`started_ms`, with
    `gap_lost` true when frames the previous one had not stored were lost with it."""

    __tablename__ = "recording_writers"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    writer: Mapped[str] = mapped_column(String(32))
    first_seq: Mapped[int] = mapped_column(Integer)
    started_ms: Mapped[int] = mapped_column(BigInteger)
    stopped_ms: Mapped[int | None] = mapped_column(BigInteger)
    gap_from_ms: Mapped[int | None] = mapped_column(BigInteger)
    gap_lost: Mapped[bool | None]
    created_at: Mapped[datetime]

"""Wire models of the live view and replay pages' data."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.schemas import WireModel


class ReplayFrame(WireModel):
    seq: int
    t: int = Field(description="Milliseconds since the run started")


class ReplayActivity(WireModel):
    t: int = Field(description="Milliseconds since the run started")
    category: str
    severity: str
    message: str


class ReplayVideo(WireModel):
    format: str
    artifact_id: str


class ReplayData(WireModel):
    """What the replay page plays: frame times, the run's activity at its times, the video if made."""

    run_id: str
    run_status: str
    status: Literal["not_available", "preparing", "processing", "ready", "failed"]
    duration_ms: int | None
    started_at: str | None
    frames: list[ReplayFrame]
    activity: list[ReplayActivity]
    video: ReplayVideo | None

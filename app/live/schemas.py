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


class ReplayGap(WireModel):
    """Where a recording continued by another replica has a hole (its owner died)."""

    from_ms: int = Field(description="The last moment recorded before the gap (ms since the run started)")
    to_ms: int = Field(description="When recording resumed (ms since the run started)")
    after_seq: int = Field(description="The last frame before the gap")
    lost: bool = Field(
        description="True when frames the previous recorder had captured were lost (it died before storing "
        "them); false for a clean hand-over"
    )


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
    gaps: list[ReplayGap] = []

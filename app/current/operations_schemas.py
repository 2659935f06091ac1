"""Wire models of `GET /v1/operations`: the deployment's capacity and admission queue, and the account's
browser starts of the last hour with their latency (the figures `/metrics` counts per process, read
from the database so every server process answers the same)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.admission.schemas import QueueOut, SlotsOut
from app.core.schemas import Timestamp, WireModel


class CapacityOut(WireModel):
    slots: list[SlotsOut] = Field(description="Slots by driver and location (as `/pressure` gives them)")
    total: int = Field(description="Browsers the deployment may run at once")
    used: int = Field(description="Browsers starting, running or stopping")
    free: int = Field(description="Free slots less the starts waiting for them (never negative)")
    warm: int = Field(description="Warm browsers launched ahead on the answering host (they hold no slot)")


class AccountCapacityOut(WireModel):
    running: int = Field(description="The account's browsers starting, running or stopping")
    limit: int | None = Field(description="Browsers the account may run at once (null: only the deployment's slots)")


class LatencyOut(WireModel):
    p50_seconds: float | None = Field(description="Median start latency (null without a successful start)")
    p95_seconds: float | None
    max_seconds: float | None


class StartBucketOut(WireModel):
    start: Timestamp = Field(description="Start of the interval")
    started: int = Field(description="Starts that reached running")
    failed: int = Field(description="Starts that failed before running")
    p50_seconds: float | None = Field(description="Median latency of the interval's successful starts")
    max_seconds: float | None


class StartsOut(WireModel):
    window_seconds: int = Field(description="The period covered: the last hour")
    bucket_seconds: int = Field(description="Width of each bucket")
    started: int
    failed: int
    pending: int = Field(description="Starts admitted and not running yet")
    latency: LatencyOut = Field(
        description="From the start's admission (a slot granted) to the browser running, as "
        "`bctrl_browser_start_seconds` measures it"
    )
    buckets: list[StartBucketOut] = Field(description="Oldest first, every bucket present (zero when quiet)")


class OperationsOut(WireModel):
    object: Literal["operations"] = "operations"
    computed_at: Timestamp
    capacity: CapacityOut
    queue: QueueOut
    account: AccountCapacityOut
    starts: StartsOut = Field(description="The account's browser starts of the last hour (its own, not other tenants')")

"""Wire format of the capacity signal (`GET /pressure`)."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import WireModel


class SlotsOut(WireModel):
    driver: str
    location: str
    total: int = Field(description="Browsers this pool may run at once (BCTRL_MAX_RUNTIMES)")
    used: int = Field(description="Browsers starting, running or stopping")
    free: int


class QueueOut(WireModel):
    depth: int = Field(description="Starts waiting for a slot")
    max: int = Field(description="Starts that may wait at once (BCTRL_ADMISSION_QUEUE_MAX)")
    oldest_wait_seconds: float = Field(description="How long the oldest waiting start has waited")


class HostOut(WireModel):
    cpu_percent: float = Field(description="CPU use of the host since the previous reading")
    cpu_count: int
    memory_percent: float
    memory_available_bytes: int
    load_average: list[float] = Field(description="1, 5 and 15 minute load averages")


class PressureOut(WireModel):
    is_available: bool = Field(description="A start sent now gets a slot without waiting (free slots beyond the queue)")
    slots: list[SlotsOut]
    free: int = Field(description="Free slots of every pool, less the starts waiting for them (never negative)")
    queue: QueueOut
    warm: int = Field(
        description="Browsers of the warm pool up or starting ahead on this host (BCTRL_POOL_SIZE): they use CPU and "
        "memory but hold no slot and belong to no tenant"
    )
    host: HostOut

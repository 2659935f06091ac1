from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_serializer

from app.connections.schemas import FlatConnection
from app.core.schemas import JsonObject, Name, RequestModel, Timestamp, WireModel, list_model
from app.runs.schemas import Failure, RecordingFlag
from app.runtimes.models import Runtime

RuntimeType = Literal["browser"]
RuntimeStatusLiteral = Literal["starting", "active", "stopping", "stopped", "failed"]
Locale = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class Viewport(RequestModel):
    width: int = Field(ge=320, le=7680)
    height: int = Field(ge=200, le=4320)


class Fingerprint(RequestModel):
    browser: Literal["chrome", "edge"] | None = None
    viewport: Viewport | None = None


class BrowserConfig(RequestModel):
    """Browser settings. Anything not listed here is refused rather than ignored."""

    fingerprint: Fingerprint | None = None
    viewport: Viewport | None = Field(default=None, description="Shorthand for fingerprint.viewport")
    locale: Locale | None = None

    def window_size(self) -> tuple[int, int] | None:
        viewport = self.viewport or (self.fingerprint.viewport if self.fingerprint else None)
        return (viewport.width, viewport.height) if viewport else None


class SeedRuntimeCreate(RequestModel):
    """POST /v1/spaces/{id}/runtimes: creates and launches at once."""

    name: Name | None = None
    type: RuntimeType = "browser"
    kind: RuntimeType | None = None
    config: BrowserConfig | None = None
    metadata: JsonObject | None = None
    recording: bool = True


class FlatRuntimeCreate(RequestModel):
    """POST /v1/runtimes: created stopped unless `start` is true."""

    type: RuntimeType = "browser"
    name: Name | None = None
    space_id: str | None = Field(default=None, max_length=64, description="Space id, or `default`")
    config: BrowserConfig | None = None
    metadata: JsonObject | None = None
    start: bool = False
    recording: bool = True
    idle_timeout_seconds: int | None = Field(default=None, ge=60, le=86_400)


class RuntimeUpdate(RequestModel):
    name: Name | None = None
    metadata: JsonObject | None = None
    config: BrowserConfig | None = Field(default=None, description="Only while the runtime is stopped")
    idle_timeout_seconds: int | None = Field(default=None, ge=60, le=86_400)
    recording: bool | None = None
    expire_after_idle_days: int | None = Field(
        default=None, ge=1, le=3650, description="Deleted after this long unused"
    )


class StartRequest(RequestModel):
    recording: bool | None = None


class Backing(WireModel):
    kind: Literal["ephemeral"] = "ephemeral"


class CdpAvailability(WireModel):
    available: bool


class ConnectionsSummary(WireModel):
    cdp: CdpAvailability


class RuntimeOut(WireModel):
    id: str
    space_id: str
    name: str
    type: RuntimeType
    kind: RuntimeType
    status: RuntimeStatusLiteral
    region: str
    capabilities: list[str]
    connections: ConnectionsSummary
    active_run_id: str | None
    metadata: JsonObject | None
    config: JsonObject
    backing: Backing
    recording: RecordingFlag
    idle_timeout_seconds: int | None
    failure: Failure | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, r: Runtime, region: str = "local") -> RuntimeOut:
        return cls(
            id=str(r.id),
            space_id=str(r.space_id),
            name=r.name,
            type=r.type,
            kind=r.type,
            status=r.status,
            region=region,
            capabilities=["cdp"],
            connections=ConnectionsSummary(cdp=CdpAvailability(available=r.status == "active")),
            active_run_id=str(r.active_run_id) if r.active_run_id else None,
            metadata=r.metadata_,
            config=r.config or {},
            backing=Backing(),
            recording=RecordingFlag(enabled=r.recording),
            idle_timeout_seconds=r.idle_timeout_seconds,
            failure=Failure(**r.failure) if r.failure else None,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


RuntimeList = list_model(RuntimeOut, "runtimes")


class StartOut(WireModel):
    """Flat start: the run it opened (or the one already active) and the runtime's status."""

    runtime_id: str
    run_id: str | None
    status: RuntimeStatusLiteral
    started: bool
    protocol: Literal["cdp"] = "cdp"


class StopOut(WireModel):
    runtime_id: str
    run_id: str | None
    status: RuntimeStatusLiteral
    stopped: bool


class WithConnection(WireModel):
    """Flat responses carrying the run's connection: `connection` always (null without a run), and its
    URL as `connectUrl` and `cdpUrl` (the SDKs' spellings) only when there is one."""

    connection: FlatConnection | None = None
    connect_url: str | None = Field(default=None, description="The connection's `cdpUrl`; absent without one")
    cdp_url: str | None = Field(default=None, description="The connection's `cdpUrl`; absent without one")

    @model_serializer(mode="wrap")
    def _urls_only_with_connection(self, handler):  # unannotated: the API description keeps the fields
        data = handler(self)
        if self.connection is None:
            for key in ("connectUrl", "cdpUrl", "connect_url", "cdp_url"):  # by alias or by name
                data.pop(key, None)
        return data

    def attached(self, connection: FlatConnection | None) -> Self:
        url = connection.cdp_url if connection else None
        return self.model_copy(update={"connection": connection, "connect_url": url, "cdp_url": url})


class FlatRuntimeOut(WithConnection, RuntimeOut):  # this base order keeps the connection fields last
    """A runtime with its active run's connection (flat create, `include=connection`)."""


class FlatStartOut(WithConnection, StartOut):
    """Flat start: the run and its connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.connections.models import Connection
from app.core import clock
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel, list_model
from app.runs.schemas import RecordingFlag, RunOut

ConnectionStatusLiteral = Literal["active", "revoked", "expired", "closed"]


class ConnectionCreate(RequestModel):
    protocol: Literal["cdp"] = Field(description="Only `cdp` can be leased today")
    ttl_seconds: int = Field(default=600, ge=1, le=7200, description="60 to 7200 seconds")
    options: JsonObject = Field(default_factory=dict)


class Endpoint(WireModel):
    url: str = Field(description="ws(s) URL for Playwright/Puppeteer; shown in this response only")
    http_url: str = Field(description="The same endpoint for clients that discover it via /json/version")
    protocol: Literal["cdp"] = "cdp"
    expires_at: Timestamp | None


class ConnectionOut(WireModel):
    id: str
    runtime_id: str
    run_id: str
    space_id: str
    protocol: Literal["cdp"]
    status: ConnectionStatusLiteral
    ttl_seconds: int | None
    options: JsonObject
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    closed_at: Timestamp | None
    last_attached_at: Timestamp | None
    endpoint: Endpoint | None = None

    @classmethod
    def of(cls, c: Connection, endpoint: Endpoint | None = None) -> ConnectionOut:
        return cls(
            id=str(c.id),
            runtime_id=str(c.runtime_id),
            run_id=str(c.run_id),
            space_id=str(c.space_id),
            protocol=c.protocol,
            status=effective_status(c),
            ttl_seconds=c.ttl_seconds,
            options=c.options,
            created_at=c.created_at,
            expires_at=c.expires_at,
            revoked_at=c.revoked_at,
            closed_at=c.closed_at,
            last_attached_at=c.last_attached_at,
            endpoint=endpoint,
        )


def effective_status(c: Connection) -> str:
    """A lease past its expiry reads as expired even before the reaper has written it."""
    if c.status == "active" and c.expires_at is not None and c.expires_at <= clock.now():
        return "expired"
    return c.status


ConnectionList = list_model(ConnectionOut, "connections")


class FlatConnection(WireModel):
    """The run-scoped connection of the flat API (Python SDK `started_browser().cdp_url`)."""

    id: str
    run_id: str
    protocol: Literal["cdp"] = "cdp"
    cdp_url: str
    connect_url: str = Field(description="Same as cdpUrl (the JS SDK's spelling)")
    http_url: str
    web_driver_url: None = None
    webdriver_url: None = None
    web_mcp_url: str | None = Field(
        None, description="MCP server (Streamable HTTP) of the tools the run's pages register (WebMCP)"
    )
    recording: RecordingFlag
    expires_at: Timestamp | None = None


class RunWithConnection(RunOut):
    """A run with its flat connection (`GET /v1/runs/{id}?include=connection`): null unless active."""

    connection: FlatConnection | None = None

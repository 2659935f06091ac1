"""Wire models of the current generation (`BCTRL-Version: 2026-10-03`, the bctrl 0.3 client): browsers
and runs. Field names, required fields and enum words follow the 0.3 wheel's `types/`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, create_model

from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel

BrowserStatus = Literal["idle", "running"]
RunStatus = Literal["starting", "active", "standby", "stopping", "ended", "failed"]
Holder = Literal["agent", "human", "none"]
Order = Literal["asc", "desc"]


class Viewport(RequestModel):
    width: int = Field(ge=320, le=7680)
    height: int = Field(ge=200, le=4320)


class _BrowserSettings(RequestModel):
    """What create and update share. Options this server cannot honour are refused by the router
    (app/current/options.py), never stored and ignored."""

    audit: JsonObject | None = None
    auto_upgrade: bool | None = None
    captcha: JsonObject | None = None
    expire_after_idle_days: int | None = Field(default=None, ge=1, le=3650)
    extensions: list[str] | None = None
    force_open_shadow_roots: bool | None = None
    gpu: bool | None = None
    headless: bool | None = None
    location: str | None = Field(default=None, max_length=64)
    metadata: JsonObject | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    network_traffic: JsonObject | None = None
    proxy: Any = None
    recording: bool | None = None
    standby_after_seconds: float | None = None
    stealth: str | None = Field(default=None, max_length=32)
    timeout_seconds: int | None = Field(default=None, ge=60, le=86_400)
    viewport: Viewport | None = None
    web_rtc_proxy_only: bool | None = None


class BrowserCreate(_BrowserSettings):
    space_id: str | None = Field(default=None, max_length=64, description="Space id, or `default`")
    from_browser: str | None = Field(default=None, max_length=64)
    persona: Any = None


class BrowserUpdate(_BrowserSettings):
    pass


class StopBody(RequestModel):
    discard_state: bool | None = None


class ViewportOut(WireModel):
    width: int
    height: int


class SavedState(WireModel):
    status: Literal["none", "saving", "saved"]
    size_bytes: int | None = None


class Warning(WireModel):
    type: str
    message: str


class Control(WireModel):
    holder: Holder
    since: Timestamp
    epoch: int


class RunRecording(WireModel):
    enabled: bool


class Connections(WireModel):
    cdp_url: str = Field(description="Hand it to Playwright's connect_over_cdp or Puppeteer's connect")
    expires_at: Timestamp = Field(description="When the browser stops if it stays idle from now (timeoutSeconds)")
    live_view_url: str
    live_view_read_only_url: str
    webdriver_url: str = Field(description="Answers 501 runtime.webdriver_unavailable: this server speaks CDP only")


class Usage(WireModel):
    billing_status: Literal["unavailable"] = "unavailable"
    captcha_solves: int = 0
    computed_at: Timestamp
    files_bytes: int
    runtime_seconds: float | None


class RunOut(WireModel):
    id: str
    object: Literal["run"] = "run"
    resource_id: str
    resource_type: Literal["browser"] = "browser"
    space_id: str
    location: str
    status: RunStatus
    end_reason: str | None = None
    control: Control
    recording: RunRecording
    connections: Connections | None = None
    usage: Usage | None = None
    trace_id: str | None = None
    warnings: list[Warning] | None = None
    created_at: Timestamp
    started_at: Timestamp | None
    ended_at: Timestamp | None
    updated_at: Timestamp


class BrowserOut(WireModel):
    id: str
    object: Literal["browser"] = "browser"
    type: Literal["browser"] = "browser"
    name: str
    space_id: str
    status: BrowserStatus
    current_run: RunOut | None
    auto_upgrade: bool
    expire_after_idle_days: int
    extensions: list[str]
    force_open_shadow_roots: bool
    gpu: bool
    headless: bool
    location: str
    metadata: JsonObject
    recording: bool
    saved_state: SavedState
    standby_after_seconds: float
    stealth: Literal["normal"]
    timeout_seconds: int
    viewport: ViewportOut
    web_rtc_proxy_only: bool
    warnings: list[Warning] | None = None
    created_at: Timestamp
    updated_at: Timestamp
    last_used_at: Timestamp


class DeletedOut(WireModel):
    id: str
    deleted: bool = True


class PageOut(WireModel):
    """A page of a list in this generation: `data`, `hasMore`, `nextCursor`."""

    item: ClassVar[type]
    has_more: bool
    next_cursor: str | None = None


def page_model(item: type[WireModel]) -> type[PageOut]:
    model = create_model(f"{item.__name__.removesuffix('Out')}Page", __base__=PageOut, data=(list[item], ...))
    model.item = item
    return model


BrowserPage = page_model(BrowserOut)
RunPage = page_model(RunOut)

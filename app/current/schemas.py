"""Wire models of the current generation (`BCTRL-Version: 2026-10-03`, the bctrl 0.3 client): browsers
and runs. Field names, required fields and enum words follow the 0.3 wheel's `types/`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, create_model, model_validator

from app.core.errors import InvalidRequest
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel

BrowserStatus = Literal["idle", "running"]
RunStatus = Literal["starting", "active", "standby", "stopping", "ended", "failed"]
Holder = Literal["agent", "human", "none"]
Order = Literal["asc", "desc"]


class Viewport(RequestModel):
    width: int = Field(ge=320, le=7680)
    height: int = Field(ge=200, le=4320)


LOCATIONS = ("auto", "local")
# Settings whose only value here is what this server does, and why another is refused.
_FIXED = {
    "autoUpgrade": (True, "the browser is the host's Chromium and follows its updates"),
    "forceOpenShadowRoots": (False, "shadow roots are left as pages create them"),
    "gpu": (False, "browsers here render without a GPU"),
    "headless": (True, "browsers here run headless"),
    "webRtcProxyOnly": (False, "no proxy is configured for browsers here"),
    "stealth": ("normal", "no fingerprint masking is offered here"),
    "standbyAfterSeconds": (0, "standby is disabled; use 0"),
}
# Settings this server does not offer at all (null or absent only).
_ABSENT = {
    "audit": "machine audit detail is not recorded here",
    "captcha": "no captcha solver is available here",
    "networkTraffic": "network traffic capture settings are not offered yet",
    "proxy": "browser proxies are not offered yet",
    "fromBrowser": "copying another browser's state is not offered",
    "persona": "personas are not offered",
}


def unsupported(field: str, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not supported by this server: {why}",
        code="browser.option_unsupported",
        details={"fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}], "value": value},
    )


class _BrowserSettings(RequestModel):
    """What create and update share. The schema names the one value this server honours for each
    fixed setting; another value is 400 `browser.option_unsupported` saying why (before the fields are
    checked, so the answer is that rather than a generic mismatch)."""

    audit: None = None
    auto_upgrade: Literal[True] | None = None
    captcha: None = None
    expire_after_idle_days: int | None = Field(default=None, ge=1, le=3650)
    extensions: list[str] | None = Field(default=None, max_length=0, description="None offered yet")
    force_open_shadow_roots: Literal[False] | None = None
    gpu: Literal[False] | None = None
    headless: Literal[True] | None = None
    location: Literal[LOCATIONS] | None = None
    metadata: JsonObject | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    network_traffic: None = None
    proxy: None = None
    recording: bool | None = None
    standby_after_seconds: float | None = Field(default=None, ge=0, le=0)
    stealth: Literal["normal"] | None = None
    timeout_seconds: int | None = Field(default=None, ge=60, le=86_400)
    viewport: Viewport | None = None
    web_rtc_proxy_only: Literal[False] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for field, (allowed, why) in _FIXED.items():
            value = data.get(field)
            if value is not None and value != allowed and type(value) is type(allowed):
                raise unsupported(field, value, why)
        for field, why in _ABSENT.items():
            if data.get(field) is not None and field in cls.model_fields_by_alias():
                raise unsupported(field, data[field], why)
        if isinstance(data.get("extensions"), list) and data["extensions"]:
            raise unsupported("extensions", data["extensions"], "extensions are not offered yet")
        location = data.get("location")
        if isinstance(location, str) and location not in LOCATIONS:
            raise unsupported("location", location, f"this server offers {', '.join(LOCATIONS)}")
        return data

    @classmethod
    def model_fields_by_alias(cls) -> set[str]:
        return {f.alias or n for n, f in cls.model_fields.items()}


class BrowserCreate(_BrowserSettings):
    space_id: str | None = Field(default=None, max_length=64, description="Space id, or `default`")
    from_browser: None = None
    persona: None = None


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

"""Wire models of the current generation (`BCTRL-Version: 2026-10-03`, the bctrl 0.3 client): browsers
and runs. Field names, required fields and enum words follow the 0.3 wheel's `types/`."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, create_model, model_validator

from app.core.errors import InvalidRequest
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.current.proxy_schemas import ProxySetting
from app.current.traffic_schemas import NetworkTraffic, NetworkTrafficOut

BrowserStatus = Literal["idle", "running"]
RunStatus = Literal["starting", "active", "standby", "stopping", "ended", "failed"]
Holder = Literal["agent", "human", "none"]
Order = Literal["asc", "desc"]


class Viewport(RequestModel):
    width: int = Field(ge=320, le=7680)
    height: int = Field(ge=200, le=4320)


# A location id: `auto` (anywhere), `local`, or a location of the driver's nodes (a swarm node label);
# which ones this deployment offers is checked at create (app/current/launch_checks.py).
LOCATION_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# Settings whose only value here is what this server does, and why another is refused.
_FIXED = {
    "autoUpgrade": (True, "the browser is the host's Chromium and follows its updates"),
    "forceOpenShadowRoots": (False, "shadow roots are left as pages create them"),
    "gpu": (False, "browsers here render without a GPU"),
    "stealth": ("normal", "no fingerprint masking is offered here"),
    "standbyAfterSeconds": (0, "standby is disabled; use 0"),
}
# Settings this server does not offer at all (null or absent only).
_ABSENT = {
    "audit": "machine audit detail is not recorded here",
    "captcha": "no captcha solver is available here",
    "fromBrowser": "copying another browser's state is not offered",
    "persona": "personas are not offered",
}


# An extension's id as the API gives it (a UUID, with or without dashes).
_EXTENSION_ID_PATTERN = r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$"
_EXTENSION_ID = re.compile(_EXTENSION_ID_PATTERN)
ExtensionId = Annotated[str, StringConstraints(pattern=_EXTENSION_ID_PATTERN)]


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
    extensions: list[ExtensionId] | None = Field(
        default=None,
        max_length=20,
        description="Ids of uploaded extensions to load, each once",
        json_schema_extra={"uniqueItems": True},
    )
    force_open_shadow_roots: Literal[False] | None = None
    gpu: Literal[False] | None = None
    headless: bool | None = Field(default=None, description="false: a headful browser on a virtual display")
    location: str | None = Field(
        default=None,
        pattern=LOCATION_PATTERN,
        description="Where the browser runs: `auto` (anywhere), or a location of `GET /v1/locations`",
    )
    metadata: JsonObject | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    network_traffic: NetworkTraffic | None = None
    proxy: ProxySetting | None = None
    recording: bool | None = None
    standby_after_seconds: float | None = Field(default=None, ge=0, le=0)
    stealth: Literal["normal"] | None = None
    timeout_seconds: int | None = Field(default=None, ge=60, le=86_400)
    viewport: Viewport | None = None
    web_rtc_proxy_only: bool | None = None

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
        named = data.get("extensions")
        if isinstance(named, list):  # the contract's own codes before the schema's generic one
            malformed = [v for v in named if isinstance(v, str) and not _EXTENSION_ID.match(v)]
            if malformed:
                raise InvalidRequest(
                    "Extension ids must be ids of uploaded extensions",
                    code="browser_extension.invalid_ids",
                    details={"extensionIds": malformed[:20]},
                )
            canonical = [v.replace("-", "").lower() for v in named if isinstance(v, str)]
            if len(set(canonical)) != len(canonical):
                raise InvalidRequest("An extension is named more than once", code="browser_extension.duplicate_ids")
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


class RunStats(WireModel):
    """What the run's browser did, counted from its events (`GET /v1/events?run=`): the list and the run
    carry it so a run list can say how much happened without reading every run's events."""

    events: int = Field(description="Events recorded for the run")
    pages_visited: int = Field(description="Top-level navigations to a document (page.navigated, about:blank left out)")
    requests: int = Field(description="Network requests the pages made (network.request)")
    errors: int = Field(description="Events of outcome failed (page errors, failed requests, ...) and console errors")
    last_frame_at_ms: int | None = Field(
        default=None,
        description="When the last recorded frame was taken (ms after the run started); its picture is "
        "GET /v1/runs/{id}/thumbnail. Null when nothing was recorded",
    )


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
    stats: RunStats | None = Field(default=None, description="On GET /v1/runs and GET /v1/runs/{id} only")
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
    network_traffic: NetworkTrafficOut | None = None
    proxy: JsonObject | None = None
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

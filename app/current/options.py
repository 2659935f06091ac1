"""Defaults of a current-generation browser and the runtime config its settings imply (which settings
are honoured and which refused is in the schema, app/current/schemas.py)."""

from __future__ import annotations

from app.current.schemas import BrowserCreate, BrowserUpdate
from app.runtimes.schemas import BrowserConfig

DEFAULT_TIMEOUT_SECONDS = 300

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "config_of", "launch_options_of"]


def config_of(body: BrowserCreate | BrowserUpdate) -> BrowserConfig | None:
    """The runtime config the settings imply (the viewport), or None when they name none."""
    if body.viewport is None:
        return None
    return BrowserConfig.model_validate({"viewport": body.viewport.model_dump()})


# The create and update words kept as the browser's launch options (app/runtimes/launch_extras.py).
_LAUNCH_FIELDS = ("headless", "proxy", "extensions", "network_traffic", "web_rtc_proxy_only", "location")


def launch_options_of(body: BrowserCreate | BrowserUpdate) -> dict:
    """The launch settings the body names, in wire words (an explicit null clears one on update)."""
    options = {}
    for field in _LAUNCH_FIELDS:
        if field not in body.model_fields_set:
            continue
        value = getattr(body, field)
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        options[type(body).model_fields[field].alias or field] = value if value not in ([], {}) else None
    return options

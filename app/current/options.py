"""The browser settings of a current-generation create or update: which this server honours, and the
clear refusal of the others (never stored and ignored; docs/decisions.md "Current API, part 1")."""

from __future__ import annotations

from typing import Any

from app.core.errors import InvalidRequest
from app.current.schemas import BrowserCreate, BrowserUpdate
from app.runtimes.schemas import BrowserConfig

DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_EXPIRE_AFTER_IDLE_DAYS = 30
LOCATIONS = ("auto", "local")


def unsupported(field: str, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not supported by this server: {why}",
        code="browser.option_unsupported",
        details={"fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}], "value": value},
    )


# (field, value this server can honour, why another value is refused)
_FIXED = (
    ("auto_upgrade", True, "the browser is the host's Chromium and follows its updates"),
    ("force_open_shadow_roots", False, "shadow roots are left as pages create them"),
    ("gpu", False, "browsers here render without a GPU"),
    ("headless", True, "browsers here run headless"),
    ("web_rtc_proxy_only", False, "no proxy is configured for browsers here"),
    ("stealth", "normal", "no fingerprint masking is offered here"),
    ("standby_after_seconds", 0, "standby is disabled; use 0"),
)
# Fields whose only honourable value is "not given".
_ABSENT = (
    ("audit", "machine audit detail is not recorded here"),
    ("captcha", "no captcha solver is available here"),
    ("network_traffic", "network traffic capture settings are not offered yet"),
    ("proxy", "browser proxies are not offered yet"),
    ("from_browser", "copying another browser's state is not offered"),
    ("persona", "personas are not offered"),
)


def check(body: BrowserCreate | BrowserUpdate) -> None:
    """400 `browser.option_unsupported` naming the first setting this server cannot honour."""
    given = body.model_fields_set
    alias = type(body).model_fields
    for name, allowed, why in _FIXED:
        value = getattr(body, name, None)
        if name in given and value is not None and value != allowed:
            raise unsupported(alias[name].alias or name, value, why)
    for name, why in _ABSENT:
        value = getattr(body, name, None)
        if name in given and value not in (None, {}, False):
            raise unsupported(alias[name].alias or name, value, why)
    if body.extensions:
        raise unsupported("extensions", body.extensions, "extensions are not offered yet")
    if body.location is not None and body.location not in LOCATIONS:
        raise unsupported("location", body.location, f"this server offers {', '.join(LOCATIONS)}")


def config_of(body: BrowserCreate | BrowserUpdate) -> BrowserConfig | None:
    """The runtime config the settings imply (the viewport), or None when they name none."""
    if body.viewport is None:
        return None
    return BrowserConfig.model_validate({"viewport": body.viewport.model_dump()})

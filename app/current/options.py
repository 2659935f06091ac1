"""Defaults of a current-generation browser and the runtime config its settings imply (which settings
are honoured and which refused is in the schema, app/current/schemas.py)."""

from __future__ import annotations

from app.current.schemas import LOCATIONS, BrowserCreate, BrowserUpdate
from app.runtimes.schemas import BrowserConfig

DEFAULT_TIMEOUT_SECONDS = 300

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "LOCATIONS", "config_of"]


def config_of(body: BrowserCreate | BrowserUpdate) -> BrowserConfig | None:
    """The runtime config the settings imply (the viewport), or None when they name none."""
    if body.viewport is None:
        return None
    return BrowserConfig.model_validate({"viewport": body.viewport.model_dump()})

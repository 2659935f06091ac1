"""An account's branding: the settings as stored, resolved with the defaults, and the logo's origin.

The one place these facts live; the account answer (`branding.resolved`), the view answer and the
pages a viewer of the account sees (live, replay, view) all use `resolve`, so they show the same
thing. Plain data in and out, in the words the settings are stored in (`productName`,
`showPoweredBy`, ...), which are also the words the pages read (app/web/branding.js); no API
generation's models here.

A logo is shown only when its origin can be written into a page's Content-Security-Policy exactly
(`logo_origin`): an https URL whose host is lower-case LDH labels or an IPv4 address, without
credentials, with a port that is a port. `check_changes` refuses any other logo when it is set, so
what is stored is what the pages show; `resolve` still leaves out one stored before that rule.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import InvalidRequest

DEFAULT_ACCENT = "#2563eb"
DEFAULT_PRODUCT_NAME = "BCTRL"
DEFAULT_SHOW_POWERED_BY = True
# The neutral tokens: the same for every account (only the accent and its shades are the account's).
NEUTRALS = {
    "bg": "#ffffff",
    "panel": "#f8fafc",
    "surfaceRaised": "#ffffff",
    "inset": "#f1f5f9",
    "hairline": "#e2e8f0",
    "borderStrong": "#cbd5e1",
    "text": "#0f172a",
    "textMuted": "#475569",
    "textFaint": "#94a3b8",
}
# The accent's shades: the share of white mixed into it.
ACCENT_SOFT_WHITE = 0.85
ACCENT_BORDER_WHITE = 0.55
SETTINGS = ("accent", "logo", "productName", "showPoweredBy")
LOGO_UNSAFE = "branding.logo_unsafe"

# A host name a CSP source expression can carry as it is (lower case, LDH labels, or an IPv4 address).
_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def towards_white(color: str, share: float) -> str:
    """`color` (#rrggbb) mixed with white: `share` of white (0..1)."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)


def logo_origin(url: str | None) -> str | None:
    """The logo's origin (`https://host[:port]`) as a page's img-src may name it, or None when the URL
    has none that can be named exactly (not https, credentials, a `*`, IPv6 or non-ASCII host, a host
    of other characters such as `;` or `,`, port 0)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or port == 0:
        return None
    if not host.isascii() or not _HOST.match(host):
        return None
    return f"https://{host}" if port in (None, 443) else f"https://{host}:{port}"


def config(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The settings as set: every setting, None where it is not set."""
    stored = stored or {}
    return {name: stored.get(name) for name in SETTINGS}


def resolve(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The branding the account's pages show: the settings with the defaults, the accent's shades and
    the neutral tokens; a logo without a nameable origin is left out."""
    settings = config(stored)
    accent = (settings["accent"] or DEFAULT_ACCENT).lower()
    logo = settings["logo"] if logo_origin(settings["logo"]) else None
    return {
        "logo": logo,
        "productName": settings["productName"] or DEFAULT_PRODUCT_NAME,
        "showPoweredBy": DEFAULT_SHOW_POWERED_BY if settings["showPoweredBy"] is None else settings["showPoweredBy"],
        "tokens": {
            "accent": accent,
            "accentSoft": towards_white(accent, ACCENT_SOFT_WHITE),
            "accentBorder": towards_white(accent, ACCENT_BORDER_WHITE),
            **NEUTRALS,
        },
    }


def check_changes(changes: dict[str, Any]) -> None:
    """Refuse settings the pages would not show: a logo without an origin a page's policy can name
    (400 `branding.logo_unsafe`). `changes` is a merge patch in the stored words (None removes)."""
    logo = changes.get("logo")
    if logo is not None and logo_origin(logo) is None:
        why = (
            "the logo must be an https URL whose host is a plain DNS name or IPv4 address (lower-case "
            "ASCII letters, digits, hyphens and dots), without credentials or wildcards"
        )
        raise InvalidRequest(
            f"branding.logo cannot be shown on the account's pages: {why}",
            code=LOGO_UNSAFE,
            details={"fields": [{"field": "branding.logo", "in": "body", "message": why, "type": "unsafe"}]},
        )

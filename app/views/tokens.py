"""View tokens: what a view's URL carries, shown once when the view is made.

A token is `bview_<view id, 32 hex>_<256 random bits>`. The view id in it is public (it names the row to
check); the rest is the secret. The row keeps only an HMAC-SHA256 of the whole token under the server
key, so a copy of the database gives nothing to replay, and the check is a constant-time comparison
against that one row."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

PREFIX = "bview_"
_SHAPE = re.compile(r"^bview_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def mint(view_id: uuid.UUID) -> str:
    return f"{PREFIX}{view_id.hex}_{secrets.token_urlsafe(32)}"


def digest(key: bytes, token: str) -> str:
    return hmac.new(key, b"view-token:" + token.encode(), hashlib.sha256).hexdigest()


def view_id_of(token: str | None) -> uuid.UUID | None:
    """The view a well-formed token names (not yet checked), else None."""
    found = _SHAPE.match(token or "")
    return uuid.UUID(found.group(1)) if found else None


def matches(key: bytes, token: str, stored: str) -> bool:
    return hmac.compare_digest(digest(key, token), stored)


def looks_like(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX)

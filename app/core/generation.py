"""Which API generation a request speaks (the bctrl 0.3 SDK): the `BCTRL-Version` header picks it.

Absent, or a date before 2026-10-03: the seed and flat shapes. A date on or after it: the current
generation (a later date than we know is served as the nearest one, 2026-10-03). Not a date: 400
`request.version_unsupported`. The answer is kept in a context variable for the error envelope, and
`CurrentRoute` / `EarlierRoute` let two generations declare the same path: each matches only requests
of its own generation.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import date

from fastapi.routing import APIRoute
from starlette.routing import Match

CURRENT = "2026-10-03"
HEADER = b"bctrl-version"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_generation: ContextVar[str | None] = ContextVar("bctrl_generation", default=None)


class Malformed(ValueError):
    pass


def parse(value: str | None) -> str | None:
    """CURRENT for a current-generation request, None for an earlier one; Malformed when not a date."""
    if value is None:
        return None
    value = value.strip()
    if not _DATE.match(value):
        raise Malformed(value)
    try:
        asked = date.fromisoformat(value)
    except ValueError:
        raise Malformed(value) from None
    return CURRENT if asked >= date.fromisoformat(CURRENT) else None


def of_scope(scope) -> str | None:
    """The generation the middleware found for this request (kept in the scope's state)."""
    return (scope.get("state") or {}).get("bctrl_generation")


def current() -> str | None:
    """The generation of the request being served (for the error envelope)."""
    return _generation.get()


def set_current(value: str | None):
    return _generation.set(value)


def reset(token) -> None:
    _generation.reset(token)


class CurrentRoute(APIRoute):
    """A route of the current generation on a path an earlier generation also serves."""

    def matches(self, scope):
        if of_scope(scope) != CURRENT:
            return Match.NONE, {}
        return super().matches(scope)


class EarlierRoute(APIRoute):
    """A seed or flat route on a path the current generation also serves."""

    def matches(self, scope):
        if of_scope(scope) == CURRENT:
            return Match.NONE, {}
        return super().matches(scope)

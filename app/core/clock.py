"""The one source of "now": UTC, truncated to milliseconds so values survive a database round trip unchanged."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and Z, the wire format for every timestamp."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # isoformat is C code (strftime was a fifth of a 50-item list's time); "+00:00" becomes "Z".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS by test_schema_fuzz.py).

A cursor is opaque: only a value the server minted as `nextCursor` (or an event id) is valid, and no
schema can describe which. Positive cases therefore never invent one; negative cases still send
cursors that break the declared shape (length, alphabet), which the server must refuse with 400.

Long polls (`timeoutMs`, up to 120 s, 30 s when absent) wait at most one second, so the budget goes to
breadth rather than to waiting; values out of bounds or of the wrong type are still sent as generated.

Free-form JSON (metadata) may hold no NUL and no integer beyond signed 64 bits, which its description
says but no non-recursive schema can express; positive cases drop NUL and clamp integers there. Typed
fields carry the same rule in their schema (core/openapi.py), so this changes nothing else.
"""

from __future__ import annotations

import schemathesis

from app.core.schemas import INT_MAX, INT_MIN

OPAQUE_QUERY = ("cursor", "after")
OPAQUE_HEADERS = ("Last-Event-ID",)
MAX_POLL_MS = 1000


def storable(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return min(max(value, INT_MIN), INT_MAX)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive:
        for name in OPAQUE_QUERY:
            if case.query:
                case.query.pop(name, None)
        for name in OPAQUE_HEADERS:
            if case.headers:
                case.headers.pop(name, None)
        if (
            case.operation.path == "/v1/api-keys"
            and isinstance(case.body, dict)
            and case.body.get("expiresAt") is not None
        ):
            case.body["expiresAt"] = None  # an API key's expiresAt must be in the future, which no schema can say
        if isinstance(case.body, dict):  # the long poll's `cursor`
            case.body.pop("cursor", None)
            case.body = storable(case.body)
    body = case.body
    if case.operation.path.endswith("/wait") and isinstance(body, dict):
        # Absent, the poll would wait its default (30 s); a negative case's value is sent as generated.
        poll = body.get("timeoutMs", MAX_POLL_MS)
        if positive and isinstance(poll, int) and not isinstance(poll, bool):
            poll = min(poll, MAX_POLL_MS)
        body["timeoutMs"] = poll
    return case


@schemathesis.hook
def filter_case(context, case):
    """A multipart form field is text on the wire: a negative case whose only fault is a number or a
    boolean in a text field arrives as a valid string ("3.2e+16", "true"), so it proves nothing."""
    meta = case.meta
    negative = meta is not None and not meta.generation.mode.is_positive
    if negative and (case.media_type or "").startswith("multipart/") and isinstance(case.body, dict):
        return not any(isinstance(value, (int, float, bool)) for name, value in case.body.items() if name != "file")
    return True

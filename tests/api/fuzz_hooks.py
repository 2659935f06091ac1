"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS by test_schema_fuzz.py).

A cursor is opaque: only a value the server minted as `nextCursor` (or an event id) is valid, and no
schema can describe which. Positive cases therefore never invent one; negative cases still send
cursors that break the declared shape (length, alphabet), which the server must refuse with 400.

Long polls (`timeoutMs`, up to 120 s, 30 s when absent) wait at most one second, so the budget goes to
breadth rather than to waiting; values out of bounds or of the wrong type are still sent as generated.

A browser's `proxy` is dropped from positive create and update bodies: a valid one makes the start
connect to the fuzzed proxy host, which is traffic off loopback (tests/e2e/test_current_proxies.py).
A page's `url` in positive cases is a loopback address nothing listens on (a fuzzed host would be
traffic off loopback). Computer-use coordinates are moved inside the smallest viewport, and a browser file's `path` names one
file of its area: what the page's size is and which names a file area refuses (`..`, overlong names)
no schema says (tests/e2e/test_current_computer.py, tests/e2e/test_current_browser_files.py).

Free-form JSON (metadata) may hold no NUL and no integer beyond signed 64 bits, which its description
says but no non-recursive schema can express; positive cases drop NUL and clamp integers there. Typed
fields carry the same rule in their schema (core/openapi.py), so this changes nothing else.
"""

from __future__ import annotations

import re

import schemathesis

from app.core.schemas import INT_MAX, INT_MIN
from app.current.page_schemas import HTTP_URL

OPAQUE_QUERY = ("cursor", "after")
OPAQUE_HEADERS = ("Last-Event-ID", "If-Match")
MAX_POLL_MS = 1000
# The smallest viewport a browser can have: a coordinate inside it is inside every page's.
MIN_VIEWPORT = (319, 199)
BROWSER_FILES = "/v1/browsers/{browser_id}/files"
BROWSER_PAGES = "/v1/browsers/{browser_id}/pages"
# Nothing listens there: the egress proxy answers its error page, and the navigation completes.
LOOPBACK_URL = "http://127.0.0.1:65535/"
AREA_FILE = "/downloads/fuzz.txt"
BROWSER_SETTINGS = ("/v1/browsers", "/v1/browsers/{browser_id}")


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


def _loads(url) -> bool:
    """Whether the server would hand `url` to the browser (it passes the description's pattern)."""
    return isinstance(url, str) and url != "about:blank" and re.fullmatch(HTTP_URL, url) is not None


def inside_viewport(value, key: str = ""):
    """Computer-use coordinates moved inside the smallest viewport (the page's size is no schema's)."""
    if isinstance(value, dict):
        return {k: inside_viewport(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if key in ("coordinate", "startCoordinate") and len(value) == 2:
            return [_clamp(v, limit) for v, limit in zip(value, MIN_VIEWPORT, strict=True)]
        return [inside_viewport(v, "coordinate" if key == "path" else "") for v in value]
    return value


def _clamp(value, limit: int):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return min(max(value, 0), limit)


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
        if (
            case.operation.path == "/v1/api-keys"
            and isinstance(case.body, dict)
            and case.body.get("type") == "subaccount"
            and not case.body.get("subaccountId")
        ):
            case.body.pop("type")  # a subaccount key names its subaccount (or the header does): no schema can say
        if isinstance(case.body, dict):  # the long poll's `cursor`
            case.body.pop("cursor", None)
            case.body = storable(case.body)
        if case.operation.path in BROWSER_SETTINGS and isinstance(case.body, dict):
            # A schema-valid proxy makes the browser's start connect to the fuzzed host, off loopback.
            case.body.pop("proxy", None)
        if (
            case.operation.path.startswith("/v1/tools")
            and case.operation.method.upper() in ("POST", "PATCH")
            and "/calls" not in case.operation.path
            and isinstance(case.body, dict)
        ):
            for key in ("inputSchema", "outputSchema"):
                if key in case.body:
                    case.body[key] = {"type": "object"}  # a valid JSON Schema, which no schema can say
        if case.query and "wait" in case.query and case.operation.path.startswith("/v1/browsers"):
            # A start waits in the admission queue up to `wait` (60 s at most): a second here, as polls.
            case.query["wait"] = _clamp(case.query["wait"], 1)
        if "/computer/" in case.operation.path:
            case.body = inside_viewport(case.body)
        if (
            case.operation.path.endswith("/screenshot")
            and isinstance(case.body, dict)
            and case.body.get("format") in (None, "png")
        ):
            case.body.pop("quality", None)  # quality is for jpeg and webp only (400 for png): no schema can say
        if case.operation.path.startswith(BROWSER_FILES) and case.query and "path" in case.query:
            case.query["path"] = AREA_FILE
        if case.operation.path == f"{BROWSER_FILES}/move" and isinstance(case.body, dict):
            case.body.update(sourcePath=AREA_FILE, destinationPath=f"{AREA_FILE}.moved")
    body = case.body
    if case.operation.path.startswith(BROWSER_PAGES) and isinstance(body, dict) and _loads(body.get("url")):
        # A page loads a URL it is given, in positive cases and in negative ones whose fault lies elsewhere:
        # a fuzzed host is traffic off loopback, and which ports the browser refuses no schema lists.
        body["url"] = LOOPBACK_URL
    if case.operation.path.endswith("/wait") and "/computer/" not in case.operation.path and isinstance(body, dict):
        # Absent, the poll would wait its default (30 s); a negative case's value is sent as generated.
        poll = body.get("timeoutMs", MAX_POLL_MS)
        if positive and isinstance(poll, (int, float)) and not isinstance(poll, bool):
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

"""What the vault accepts: paths, list prefixes, origins and field values. Each refusal is a 400 with
the vault's documented code and the field it is about. The rules are also regular expressions, published
in the API description: what they accept, the checks here accept too, and the reverse."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import InvalidRequest

MAX_PATH = 512
MAX_SEGMENT = 128
MAX_DEPTH = 16
LIMITS = {"username": 512, "password": 4096, "totp": 256, "value": 65536, "notes": 16384, "label": 200}
MAX_ORIGINS = 50
MAX_ORIGIN = 300
DEFAULT_PORTS = {"http": 80, "https": 443}

# A path: segments of letters, digits and . _ - @ + = , ~ (not `.` or `..`, at most 128 characters)
# joined by `/`, at most 16 of them.
_CH, _NODOT = "[A-Za-z0-9._@+=,~-]", "[A-Za-z0-9_@+=,~-]"
_SEG = rf"(?:{_NODOT}{_CH}{{0,127}}|\.{_NODOT}{_CH}{{0,126}}|\.\.{_CH}{{1,126}})"
PATH_PATTERN = rf"^{_SEG}(?:/{_SEG}){{0,{MAX_DEPTH - 1}}}$"
# A list prefix: whole segments each followed by `/`, then perhaps the start of one more.
PREFIX_PATTERN = rf"^(?:{_SEG}/){{0,{MAX_DEPTH - 1}}}(?:{_SEG}/?)?$"
NOT_BLANK_PATTERN = r"\S"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
ORIGIN_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?/?$"
# A TOTP seed: base32 (spaces and dashes ignored, `=` padding optional) of a length that decodes (8n, or
# 8n + 2, 4, 5 or 7 characters), at least 16 characters (80 bits).
_B32 = "[A-Za-z2-7][ -]*"
TOTP_PATTERN = (
    rf"^[ -]*(?:(?:{_B32}){{8}}){{2,}}(?:(?:{_B32}){{7}}|(?:{_B32}){{5}}|(?:{_B32}){{4}}|(?:{_B32}){{2}})?=*$"
)

_PATH, _PREFIX, _ORIGIN = re.compile(PATH_PATTERN), re.compile(PREFIX_PATTERN), re.compile(ORIGIN_PATTERN)
_SEGMENT_CHARS = re.compile(r"^[A-Za-z0-9._@+=,~-]*$")


def invalid(code: str, field: str, message: str, where: str = "body") -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}",
        code=code,
        details={"fields": [{"field": field, "in": where, "message": message, "type": "invalid"}]},
    )


def _path_problem(path: str, *, prefix: bool) -> str | None:
    """Why `path` is refused (the first rule it breaks, in words a person can act on), else None."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "control characters are not allowed"
    if len(path) > MAX_PATH:
        return f"at most {MAX_PATH} characters"
    if path.startswith("/"):
        return "a path is relative: no leading /"
    segments = path.split("/")
    if prefix and segments[-1] == "":
        segments = segments[:-1]  # a prefix may end with /
    elif path.endswith("/"):
        return "no trailing /"
    if len(segments) > MAX_DEPTH:
        return f"at most {MAX_DEPTH} segments"
    for seg in segments:
        if seg == "":
            return "empty segments (//) are not allowed"
        if seg in (".", ".."):
            return f"the segment {seg!r} is not allowed"
        if len(seg) > MAX_SEGMENT:
            return f"each segment has at most {MAX_SEGMENT} characters"
        if not _SEGMENT_CHARS.match(seg):
            return "segments use letters, digits and . _ - @ + = , ~ only"
    if not (_PREFIX if prefix else _PATH).match(path):
        return "segments of letters, digits and . _ - @ + = , ~ separated by /"
    return None


def path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("secrets.path_invalid", "path", "a path is required, for example prod/github/bot")
    problem = _path_problem(value, prefix=False)
    if problem:
        raise invalid("secrets.path_invalid", "path", problem)
    return value


def prefix(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    problem = _path_problem(value, prefix=True)
    if problem:
        raise invalid("secrets.prefix_invalid", "prefix", problem, where="query")
    return value


def field(name: str, value: Any) -> str | None:
    """A field's new value: None clears it; an empty (or, but for notes, blank) string is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid("secrets.invalid", name, "a string")
    if value == "" or (name != "notes" and not re.search(NOT_BLANK_PATTERN, value)):
        raise invalid("secrets.field_empty", name, "must not be empty (send null to clear a field)")
    if len(value) > LIMITS[name]:
        raise invalid("secrets.invalid", name, f"at most {LIMITS[name]} characters")
    if "\x00" in value:
        raise invalid("secrets.invalid", name, "NUL characters are not allowed")
    if name == "totp" and not re.match(TOTP_PATTERN, value):
        why = "a base32 seed (letters A-Z, digits 2-7; spaces and dashes ignored) of at least 16 characters"
        raise invalid("secrets.invalid", name, why)
    return value


def origin(value: Any, field_name: str = "origins") -> str:
    """An allowed origin, normalised: `scheme://host[:port]` (http or https; the default port dropped,
    scheme and host in lower case), or `scheme://*.host` for any subdomain of host."""
    why = "an origin such as https://github.com, http://127.0.0.1:8080 or https://*.example.com (no path)"
    if not isinstance(value, str) or len(value) > MAX_ORIGIN or not _ORIGIN.match(value):
        raise invalid("secrets.origin_invalid", field_name, why)
    parts = urlsplit(value.rstrip("/"))
    scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origins(values: Any) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or len(values) > MAX_ORIGINS:
        raise invalid("secrets.origin_invalid", "origins", f"a list of at most {MAX_ORIGINS} origins")
    out: list[str] = []
    for i, v in enumerate(values):
        o = origin(v, f"origins[{i}]")
        if o not in out:
            out.append(o)
    return out


def page_origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of the page at `url` (or of an origin), None when it has no web origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except (ValueError, AttributeError):
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def origin_allows(allowed: str, page: tuple[str, str, int]) -> bool:
    """Whether the allowed origin (normalised) admits the page's origin: scheme, host and port exactly,
    or any subdomain (not the host itself) for `*.host`."""
    wildcard = "://*." in allowed
    rule = page_origin(allowed.replace("://*.", "://", 1) if wildcard else allowed)
    if rule is None:
        return False
    scheme, host, port = rule
    if scheme != page[0] or port != page[2]:
        return False
    return page[1].endswith("." + host) if wildcard else host == page[1]

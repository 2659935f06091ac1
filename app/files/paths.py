"""The path rules shared by space storage and runtime file areas: relative, clean, no traversal."""

from __future__ import annotations

from app.core.errors import InvalidRequest

MAX_PATH = 4096
# The rules of check_relative() as a JSON Schema pattern, for the API description: segments of
# characters other than `/`, `\\` and controls, none empty, `.` or `..`.
_CH = r"[^/\\\x00-\x1f\x7f]"
_SEGMENT = rf"(?:{_CH}*[^./\\\x00-\x1f\x7f]{_CH}*|\.{{3,}})"
PATH_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
# A display name (files/service.py check_name): no control characters, not only spaces.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def check_relative(raw: object, *, field: str, code: str) -> str:
    """`raw` as a clean relative path, or 400 `code`.

    Refused: empty or longer than 4096 characters, absolute, a backslash, NUL or another control
    character, an empty segment (`a//b`, a trailing `/`), and `.` or `..` segments.
    """

    def invalid(reason: str) -> InvalidRequest:
        shown = raw[:200] if isinstance(raw, str) else None
        return InvalidRequest(
            f"{field} is not a valid relative path: {reason}",
            code=code,
            details={"field": field, "path": shown, "reason": reason},
        )

    if not isinstance(raw, str) or not raw:
        raise invalid("empty")
    if len(raw) > MAX_PATH:
        raise invalid(f"longer than {MAX_PATH} characters")
    if raw.startswith("/"):
        raise invalid("absolute paths are not allowed")
    if "\\" in raw:
        raise invalid("backslashes are not allowed")
    if any(ch < " " or ch == "\x7f" for ch in raw):
        raise invalid("control characters are not allowed")
    for segment in raw.split("/"):
        if segment == "":
            raise invalid("empty path segment")
        if segment in (".", ".."):
            raise invalid("`.` and `..` segments are not allowed")
    return raw


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]

"""Domain errors and the one place that turns any failure into the contract's error envelope."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import generation
from app.core.requestctx import current_request_id
from app.core.responses import JSONResponse


class DomainError(Exception):
    """An error a client can act on: a stable code, an HTTP status, a message and details."""

    status = 400
    code = "request.invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}
        self.headers = headers or {}


class InvalidRequest(DomainError):
    status = 400
    code = "request.invalid"


class NotFound(DomainError):
    status = 404
    code = "resource.not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


def the_one_named(found: list, name: str, noun: str, not_found: DomainError):
    """The one row a name stands for among `found` (a lookup by name, limited to two): `not_found` when
    none, 409 `resource.name_ambiguous` when the name stands for more than one."""
    if not found:
        raise not_found
    if len(found) > 1:
        raise Conflict(
            f"More than one {noun} is named {name!r}; name its space (spaceId) or use its id",
            code="resource.name_ambiguous",
            details={"name": name},
        )
    return found[0]


class Unauthorized(DomainError):
    status = 401
    code = "auth.required"


class Unavailable(DomainError):
    status = 503
    code = "server.unavailable"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


# What a 503 tells clients to wait before retrying, when the refusal names no better figure. Backends
# that went away come back in about a second here once they answer again (the pool re-connects).
RETRY_AFTER_SECONDS = 2

# SQLSTATE classes that mean "the database is not reachable or not accepting work now", not "this
# request is wrong": connection exceptions, operator intervention (shutdown, starting up, statement
# timeout), too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57", "53300")
# SQLite's own words for "another writer held the file too long" and "the file cannot be used".
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")
# Which Redis user failed, by the innermost of our modules on the stack, so the code names it.
_STDLIB_NET = ("asyncio", "uvloop", "socket", "ssl", "selectors", "concurrent")
_REDIS_ROLES = (("app.runs.notifier", "events"), ("app.locks", "lock"))


def _causes(exc: BaseException):
    """The exception, what it was raised from or during, and members of exception groups."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend((current.__cause__, current.__context__))


def _modules(exc: BaseException) -> list[str]:
    """Module names of the frames `exc` travelled through, outermost first."""
    names, tb = [], exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return names


def _database_trouble(exc: BaseException, modules: list[str]) -> bool:
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.TimeoutError | sa.DisconnectionError):  # pool exhausted, connection lost
        return True
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    if type(exc).__module__.startswith("sqlite3") or "aiosqlite" in type(exc).__module__:
        return any(words in str(exc).lower() for words in _SQLITE_UNAVAILABLE)
    if isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError):
        # Connect refused, reset, unreachable, connect timeout: only when raised inside a database driver
        # (below it only the standard library's networking), so a file error of ours stays a 500.
        ours = [m for m in modules if not m.startswith(_STDLIB_NET)]
        return bool(ours) and ours[-1].startswith(("sqlalchemy", "asyncpg", "aiosqlite"))
    return False


def backend_unavailable(exc: BaseException) -> Unavailable | None:
    """The one place that recognises a backend outage in an exception (or what caused it): the database
    (PostgreSQL or SQLite) not answering -> `database.unavailable`; Redis not answering -> `lock.unavailable`
    or `events.unavailable` by which part of ours was using it. None for anything else (a bug stays a 500)."""
    from redis import exceptions as redis_errors

    for cause in _causes(exc):
        modules = _modules(cause)
        if isinstance(cause, redis_errors.ConnectionError | redis_errors.TimeoutError):
            ours = [m for m in modules if m.startswith("app.")]
            role = next((r for m in reversed(ours) for prefix, r in _REDIS_ROLES if m.startswith(prefix)), "lock")
            return Unavailable(
                f"The {'lock' if role == 'lock' else 'event'} service (Redis) is not answering; retry shortly",
                code=f"{role}.unavailable",
                details={"backend": "redis", "retryAfterSeconds": RETRY_AFTER_SECONDS},
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if _database_trouble(cause, modules):
            return Unavailable(
                "The database is not answering; retry shortly",
                code="database.unavailable",
                details={"backend": "database", "retryAfterSeconds": RETRY_AFTER_SECONDS},
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
    return None


# The current generation's reason classes, by HTTP status (the bctrl 0.3 SDK).
_REASON_CLASSES = {
    400: "invalid_input",
    401: "unauthorized",
    402: "capability_limit_exceeded",
    403: "capability_denied",
    404: "not_found",
    409: "conflict",
    413: "invalid_input",
    429: "rate_limited",
    501: "capability_denied",
    502: "upstream",
    504: "upstream",
}
# Our codes spelled as the current generation's public codes, where one means the same thing (a browser
# is our runtime there). Codes not listed keep our spelling; docs/decisions.md lists them.
CURRENT_CODES = {
    "runtime.not_found": "browser.not_found",
    "runtime.name_conflict": "browser.name_conflict",
    "runtime.not_active": "browser.not_running",
    "runtime.controller_busy": "browser.control_held",
    "runtime.capacity_exhausted": "browser.concurrent_quota_exceeded",
    "runtime.transitioning": "runtime.start_in_progress",
    "route.not_found": "resource.not_found",
    "idempotency.conflict": "idempotency.mismatch",
}


def error_body(
    code: str, message: str, details: dict[str, Any] | None, request_id: str | None, status: int = 400
) -> dict[str, Any]:
    """The error envelope, the one place it is built: REST responses, the middleware's last resort, and
    the CDP upgrade's refusals (TCP splice and ASGI relay). Seed and flat: `{error, code, requestId,
    details}`; the current generation (a request with `BCTRL-Version`) nests it under `error`."""
    if generation.current() != generation.CURRENT:
        return {"error": message, "code": code, "requestId": request_id, "details": details or {}}
    body = {
        "code": CURRENT_CODES.get(code, code),
        "message": message,
        "reasonClass": _REASON_CLASSES.get(status, "server" if status >= 500 else "invalid_input"),
        "requestId": request_id,
    }
    if details:
        body["details"] = details
    return {"error": body}


def envelope(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 503 and not any(k.lower() == "retry-after" for k in headers or {}):
        # Every 503 says when to come back.
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_SECONDS)}
    body = error_body(code, message, details, current_request_id(), status)
    return JSONResponse(body, status_code=status, headers=headers)


# Codes for HTTP errors raised by the framework itself (unknown route, wrong method, ...).
_HTTP_CODES = {
    404: ("route.not_found", "No such route"),
    405: ("request.method_not_allowed", "Method not allowed on this route"),
    413: ("request.too_large", "Request body is too large"),
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _json_error(err: dict[str, Any], doc: Any) -> str:
    """ "Malformed JSON at line 1 column 9: Expecting ',' delimiter" from FastAPI's json_invalid error."""
    loc = err.get("loc") or ()
    pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    reason = (err.get("ctx") or {}).get("error") or "not valid JSON"
    if pos is None or not isinstance(doc, (str, bytes)):
        return f"Malformed JSON: {reason}"
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else doc
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"Malformed JSON at line {line} column {column}: {reason}"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # say what is wrong and where, not the offset as a field
                message = _json_error(err, exc.body)
                return envelope(
                    400,
                    "request.invalid",
                    message,
                    {"fields": [{"field": "body", "in": "body", "message": message, "type": "json_invalid"}]},
                )
            loc = tuple(err.get("loc", ()))
            where = loc[0] if loc else "body"
            fields.append(
                {
                    "field": _field_name(loc),
                    "in": where,
                    "message": err.get("msg", "invalid"),
                    "type": err.get("type", "invalid"),
                }
            )
        names = ", ".join(sorted({f["field"] for f in fields}))
        return envelope(400, "request.invalid", f"Invalid request: {names}", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("request.invalid", str(exc.detail)))
        return envelope(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    # Unexpected exceptions become 503 `*.unavailable` (backend_unavailable) or 500 `server.error` in
    # core/middleware.py, where the request id is known.

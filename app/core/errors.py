"""Domain errors and the one place that turns any failure into the contract's error envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from app.core.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.requestctx import current_request_id

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


class Unauthorized(DomainError):
    status = 401
    code = "auth.required"


class Unavailable(DomainError):
    status = 503
    code = "server.unavailable"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"


def envelope(status: int, code: str, message: str, details: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "code": code, "requestId": current_request_id(), "details": details or {}},
        status_code=status,
        headers=headers,
    )


# Codes for HTTP errors raised by the framework itself (unknown route, wrong method, ...).
_HTTP_CODES = {
    404: ("route.not_found", "No such route"),
    405: ("request.method_not_allowed", "Method not allowed on this route"),
    413: ("request.too_large", "Request body is too large"),
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            where = loc[0] if loc else "body"
            fields.append({"field": _field_name(loc), "in": where, "message": err.get("msg", "invalid"),
                           "type": err.get("type", "invalid")})
        names = ", ".join(sorted({f["field"] for f in fields}))
        return envelope(400, "request.invalid", f"Invalid request: {names}", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("request.invalid", str(exc.detail)))
        return envelope(exc.status_code, code, message, headers=getattr(exc, "headers", None))
    # Unexpected exceptions become 500 `server.error` in core/middleware.py, where the request id is known.

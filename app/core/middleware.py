"""Pure ASGI middleware: a request id on every response, and a cap on request body size."""

from __future__ import annotations

import re
import time
import uuid

import orjson
import structlog
from starlette.exceptions import HTTPException

from app.core import generation
from app.core.errors import backend_unavailable, error_body
from app.core.requestctx import current_request_id, reset_request_id, set_request_id

_access = structlog.get_logger("bctrl.access")
_errors = structlog.get_logger("bctrl.errors")
_VALID_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_INCOMING_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        token = set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        version = dict(scope.get("headers") or []).get(generation.HEADER)
        malformed = False
        try:
            spoken = generation.parse(version.decode("latin-1") if version is not None else None)
        except generation.Malformed:
            spoken, malformed = generation.CURRENT, True  # refused in the current envelope: it named a version
        scope.setdefault("state", {})["bctrl_generation"] = spoken
        generation_token = generation.set_current(spoken)
        echo = [(b"bctrl-version", spoken.encode())] if spoken else []

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(echo)
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        status = 0

        async def send_logged(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send_with_id(message)

        try:
            if malformed:
                await _refuse_version(send_logged, version, request_id, scope["type"])
                return
            await self.app(scope, receive, send_logged)
        except Exception as exc:
            # Here rather than in Starlette's outermost handler, so the answer still carries the request id.
            unavailable = backend_unavailable(exc)
            if unavailable is not None:
                # An outage, not a bug: 503 with the backend's code and when to retry (no traceback spam).
                _errors.warning(
                    "backend_unavailable",
                    code=unavailable.code,
                    path=scope.get("path"),
                    method=scope.get("method"),
                    error=type(exc).__name__,
                )  # not str(exc): SQL parameters
                status_code, code, message = 503, unavailable.code, unavailable.message
                details, extra = (
                    unavailable.details,
                    [(k.lower().encode(), v.encode()) for k, v in unavailable.headers.items()],
                )
            else:
                _errors.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
                status_code, code, message, details, extra = 500, "server.error", "Internal server error", {}, []
            if scope["type"] == "http" and not status:
                body = orjson.dumps(error_body(code, message, details, request_id, status_code))
                await send_logged(
                    {
                        "type": "http.response.start",
                        "status": status_code,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *extra,
                        ],
                    }
                )
                await send_logged({"type": "http.response.body", "body": body})
        finally:
            if scope["type"] == "http":
                # The path only: query strings can carry connection tokens.
                _access.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            generation.reset(generation_token)
            reset_request_id(token)


async def _refuse_version(send, version: bytes, request_id: str, kind: str) -> None:
    body = orjson.dumps(
        error_body(
            "request.version_unsupported",
            f"BCTRL-Version must be a date (YYYY-MM-DD), such as {generation.CURRENT}",
            {"header": "BCTRL-Version", "value": version.decode("latin-1")[:64], "supported": [generation.CURRENT]},
            request_id,
            400,
        )
    )
    if kind != "http":
        return  # a websocket upgrade: closing without accepting refuses it
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(HTTPException):
    # An HTTPException so that FastAPI's body parsing re-raises it instead of turning it into a 400.
    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimitMiddleware:
    """413 `request.too_large` for bodies over the limit, whether declared by Content-Length or streamed."""

    def __init__(
        self, app, max_bytes: int, exempt_prefixes: tuple[str, ...] = (), exempt_paths: re.Pattern[str] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes
        # Routes that stream their bodies and enforce their own limit (uploads).
        self.exempt_paths = exempt_paths

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith(self.exempt_prefixes)
            or (self.exempt_paths is not None and self.exempt_paths.match(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send) -> None:
        body = orjson.dumps(
            error_body(
                "request.too_large",
                f"Request body is larger than {self.max_bytes} bytes",
                {"maxBytes": self.max_bytes},
                current_request_id(),
                413,
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

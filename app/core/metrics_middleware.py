"""HTTP metrics (pure ASGI): requests by method, route template and status, their duration, and the
event streams open. The route is the matched route's path template (`/v1/browsers/{browserId}`), never
the raw path, so the series stay bounded whatever clients ask for; nothing matched is `unmatched`."""

from __future__ import annotations

import asyncio
import time

from app.core import metrics

UNMATCHED = "unmatched"
_EVENT_STREAM = b"text/event-stream"
# Anything else a client sends is counted as `other` (a method is the client's string).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope) -> str:
    route = scope.get("route")
    # `path_format` is the template as declared (Starlette's `path` may carry a mount's prefix parts).
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        streaming: str | None = None

        async def send_counted(message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers") or ():
                    if name.lower() == b"content-type" and value.startswith(_EVENT_STREAM):
                        streaming = route_of(scope)
                        metrics.sse_subscribers.labels(streaming).inc()
                        break
            await send(message)

        failed = "500"
        try:
            await self.app(scope, receive, send_counted)
        except asyncio.CancelledError:
            failed = "499"  # the client went away before an answer (nginx's word for it)
            raise
        finally:
            route = route_of(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            # No answer started: the error handlers' last resort did not run (it would have set a status).
            _requests(method, route, status or failed).inc()
            if streaming is not None:
                metrics.sse_subscribers.labels(streaming).dec()
            else:
                _seconds(method, route).observe(time.perf_counter() - started)


# The labelled children, kept: `labels()` validates and locks on every call, a third of the cost here.
# Bounded like the series themselves (methods x route templates x statuses).
_counted: dict[tuple, object] = {}
_timed: dict[tuple, object] = {}


def _requests(method: str, route: str, status: int | str):
    key = (method, route, status)
    child = _counted.get(key)
    if child is None:
        child = _counted[key] = metrics.http_requests.labels(method, route, str(status))
    return child


def _seconds(method: str, route: str):
    key = (method, route)
    child = _timed.get(key)
    if child is None:
        child = _timed[key] = metrics.http_request_seconds.labels(method, route)
    return child

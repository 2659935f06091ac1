"""OPTIONS and 405 with the route's real `Allow` header (RFC 9110 §9.3.7, §15.5.6).

The router answers a method a route does not serve with 405 and the methods of the first route
whose path matched; a path served by several routes (GET and POST of /v1/spaces are two) would list
only some of them. Here, the methods are those of every route matching the path: `OPTIONS` gets
204 with that `Allow` and no authentication (it tells nothing /openapi.json does not), and every 405
has its `Allow` replaced by it. Paths no route serves are left to the router (404).
"""

from __future__ import annotations

from starlette.routing import Match

_PROBED = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app, scope) -> list[str]:
    """The methods some route serves at this request's path, plus OPTIONS; empty when none matches.
    A path the API description names literally (`/v1/proxies/pools`) has that path's methods, not
    also those of a parameterised sibling that would take it as an id (`/v1/proxies/{proxy_id}`)."""
    methods = []
    for method in _PROBED:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            methods.append(method)
    literal = _literal_paths(app).get(scope.get("path", ""))
    if literal:
        methods = [method for method in methods if method in literal]
    return [*methods, "OPTIONS"] if methods else []


def _literal_paths(app) -> dict[str, set[str]]:
    """Paths of /openapi.json without parameters, and their methods (computed once per app)."""
    cached = getattr(app.state, "literal_paths", None)
    if cached is None:
        cached = {
            path: {method.upper() for method in item}
            for path, item in app.openapi().get("paths", {}).items()
            if "{" not in path
        }
        app.state.literal_paths = cached
    return cached


class AllowedMethodsMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allow = allowed_methods(scope["app"], scope)
            if allow:
                await send(
                    {"type": "http.response.start", "status": 204, "headers": [(b"allow", ", ".join(allow).encode())]}
                )
                await send({"type": "http.response.body", "body": b""})
                return

        async def send_with_allow(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = allowed_methods(scope["app"], scope)
                headers = [(k, v) for k, v in message.get("headers") or [] if k.lower() != b"allow"]
                if allow:
                    headers.append((b"allow", ", ".join(allow).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)

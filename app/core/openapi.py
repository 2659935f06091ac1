"""The published API description (/openapi.json), made to say what the server really does.

FastAPI's generator documents a 422 that this server never sends (validation failures are 400 in the
error envelope, core/errors.py) and knows nothing of the statuses every route shares: 401 without a
valid key, 400 for bad input, 404 for an id that is unknown or another account's, 503 when a backend
is down, or of the `x-request-id` header on every response. Routes declare what is particular to
them (409, 429, media types, headers) with `responses=`; the rules common to all are applied here,
once, so a new route is described correctly without repeating them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core import docs, generation, titles
from app.core.config import Settings
from app.core.schemas import INT_MAX, INT_MIN, ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
BINARY = {"type": "string", "format": "binary"}

_REQUEST_ID = {
    "description": "The request's id, also in the error envelope's `requestId`; an incoming valid "
    "`X-Request-Id` is echoed",
    "required": True,
    "schema": {"type": "string"},
}
_RETRY_AFTER = {
    "description": "Seconds after which a retry may succeed",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}

_DESCRIBED = {
    400: "Invalid request (`request.invalid` or a more precise code); `details.fields` names the bad fields",
    401: "Missing or invalid credentials (`auth.required`)",
    404: "Not found, or owned by another account (the two are indistinguishable)",
    413: "Body too large (`request.too_large`)",
    503: "A backend (database, lock, object store or browser host) is unavailable (`*.unavailable`); see Retry-After",
}


def download(description: str = "The stored bytes") -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route that serves stored bytes (core/../storage/http.py serve()).

    The body is sent with the media type recorded when it was stored, `application/octet-stream` when
    none was, so any media type may come; a single `Range` gets 206 with `Content-Range`.
    """
    headers = {
        "Content-Disposition": {
            "description": "`attachment` with the stored name (RFC 6266)",
            "required": True,
            "schema": {"type": "string"},
        },
        "ETag": {
            "description": "The content's SHA-256, quoted; send it as `If-Range`",
            "required": True,
            "schema": {"type": "string"},
        },
        "Accept-Ranges": {"description": "`bytes`", "required": True, "schema": {"type": "string", "enum": ["bytes"]}},
        "Content-Length": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    }
    content = {"application/octet-stream": {"schema": BINARY}, "*/*": {"schema": BINARY}}
    content_range = {
        "description": "`bytes START-END/SIZE`",
        "required": True,
        "schema": {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
    }
    return {
        200: {
            "description": f"{description}, in the media type they were stored with "
            "(`application/octet-stream` when unknown)",
            "content": content,
            "headers": headers,
        },
        206: {
            "description": "The requested byte range (a single `Range: bytes=...`)",
            "content": content,
            "headers": {**headers, "Content-Range": content_range},
        },
        416: {
            "description": "Range outside the content (`request.range_not_satisfiable`); `Content-Range: bytes */SIZE`",
            "content": {"application/json": {"schema": ERROR_REF}},
            "headers": {"Content-Range": {"required": True, "schema": {"type": "string"}}},
        },
    }


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the corrected description (built once, on first request) as /openapi.json, and its reader at
    /docs from files shipped in the package (FastAPI's own /docs and /redoc load Swagger UI from a CDN)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                openapi_version=app.openapi_version,
            )
            app.openapi_schema = describe(schema, settings, _generations(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    docs.install(app)


def _generations(app: FastAPI) -> dict[str, Any]:
    """What the description says of generations that only the routes know: the tags whose routes are all
    of the current generation (app/current), and the paths where the current shape is hidden behind an
    earlier one (both generations serve the path; the description holds one operation per method)."""
    from fastapi.routing import APIRoute, iter_route_contexts

    modules: dict[str, set[bool]] = {}
    shared: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        current = route.endpoint.__module__.startswith("app.current.")
        if route.include_in_schema:
            for tag in route.tags:
                modules.setdefault(str(tag), set()).add(current)
        elif current and isinstance(route, generation.CurrentRoute):
            shared.update((context.path or route.path, method.lower()) for method in route.methods or ())
    return {"current_tags": {tag for tag, kinds in modules.items() if kinds == {True}}, "shared_paths": shared}


def describe(schema: dict[str, Any], settings: Settings, found: dict[str, Any] | None = None) -> dict[str, Any]:
    found = found or {"current_tags": set(), "shared_paths": set()}
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    _deployment_limits(schemas, settings)
    _storable_bounds(schema, schemas)
    if "ErrorOut" not in schemas:
        schemas["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _statuses(path, method, operation)
    # Only the never-sent 422 used these.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            operation["summary"] = titles.summary(method, path, operation)
    schema["tags"] = titles.tags(schema, found["current_tags"])
    # Only the paths where the description shows an earlier generation's operation in the current one's place.
    shared = {path for path, method in found["shared_paths"] if method in schema.get("paths", {}).get(path, {})}
    schema["info"]["description"] = titles.description(shared) + "\n" + _INFO
    return schema


def _deployment_limits(schemas: dict[str, Any], settings: Settings) -> None:
    """Limits this server was configured with, where the model can only state the universal bounds."""
    ttl = schemas.get("ConnectionCreate", {}).get("properties", {}).get("ttlSeconds")
    if ttl is not None:
        ttl["minimum"] = settings.min_lease_ttl_seconds
        ttl["description"] = f"{settings.min_lease_ttl_seconds} to {ttl['maximum']:g} seconds"


NO_NUL = "^[^\\u0000]*$"


def _storable_bounds(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Say in every request body and query what core/schemas.py storable_problem() refuses with 400: no NUL in
    any string or object key, integers within signed 64 bits. Free-form values (metadata) cannot
    carry it without a recursive schema: their description says it."""
    seen: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen and name in components:
                seen.add(name)
                visit(components[name])
            return
        kind = node.get("type")
        if kind == "string" and "enum" not in node and "const" not in node and node.get("format") != "binary":
            if "pattern" in node:
                node.setdefault("allOf", []).append({"pattern": NO_NUL})
            else:
                node["pattern"] = NO_NUL
        elif kind == "integer":
            node["minimum"] = max(node.get("minimum", INT_MIN), INT_MIN)
            node["maximum"] = min(node.get("maximum", INT_MAX), INT_MAX)
        elif kind == "object" and "properties" not in node:
            node["propertyNames"] = {"pattern": NO_NUL}
            node["description"] = (
                node.get("description", "") + " Free-form JSON: no NUL (\\u0000) in any "
                "string or key, integers within signed 64 bits."
            ).strip()
        for item in node.get("properties", {}).values():
            visit(item)
        for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            if key in node:
                visit(node[key])

    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                visit(content.get("schema"))
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":  # core/query.py check_query refuses a NUL there too
                    visit(parameter.get("schema"))


def _statuses(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    params = op.get("parameters", [])
    # Viewer routes authenticate with the link's `token` instead of an API key.
    token = any(p["in"] == "query" and p["name"] == "token" for p in params)
    authenticated = bool(op.get("security")) or token
    api = path.startswith("/v1/")
    wanted = set()
    if api:
        # Every API route refuses unknown query parameters and malformed input with 400.
        wanted |= {400, 503}
    if authenticated:
        wanted.add(401)
    if token or any(p["in"] == "path" for p in params):
        wanted.add(404)
    if "requestBody" in op:
        wanted.add(413)
    for status in sorted(wanted):
        responses.setdefault(
            str(status), {"description": _DESCRIBED[status], "content": {"application/json": {"schema": ERROR_REF}}}
        )
    for status, response in responses.items():
        content = response.get("content", {})
        if status.startswith("2") and len(content) > 1 and not content.get("application/json", {"schema": 1})["schema"]:
            # FastAPI's placeholder for a route without a response model, next to the media type it declared.
            del content["application/json"]
        headers = response.setdefault("headers", {})
        headers.setdefault("x-request-id", _REQUEST_ID)
        if status in ("429", "503"):
            headers.setdefault("Retry-After", _RETRY_AFTER)
    op["responses"] = dict(sorted(responses.items()))


_INFO = """\
## Errors and conventions

Errors of the seed and flat generations are the JSON envelope `{error, code, requestId, details}` (`ErrorOut`);
the current generation's are `{"error": {code, message, reasonClass, requestId, details}}`. Either way the
`code` is stable: input that fails validation is 400 (never 422) and `details.fields` names each bad field.
Every response carries `x-request-id`; current ones also `BCTRL-Version`. Creates and starts accept
`Idempotency-Key`.

Methods: `OPTIONS` on any route answers `204 No Content` with an `Allow` header listing the route's
methods; a method the route does not serve answers `405` in the envelope, with the same `Allow` header.
"""

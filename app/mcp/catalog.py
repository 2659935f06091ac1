"""The MCP tools, made from the current generation's routes: one tool per operation named in `names.py`.

The description of an operation is the one its route gives /openapi.json (FastAPI builds both from the same
route): its summary and description, its path and query parameters and its JSON body make the tool's input
schema, its JSON success response the output schema. An operation is left out when a tool could not carry
it: a request body that is not JSON (uploads), an answer that is not JSON (downloads, SSE streams).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from app.core import titles
from app.mcp.names import TOOL_NAMES

_REF = re.compile(r"^#/components/schemas/(.+)$")


@dataclass(frozen=True)
class Operation:
    """One tool: the REST operation it runs and the schemas it declares."""

    name: str
    method: str
    path: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool


class _Described(RouteContext):
    """A current route as /openapi.json would describe it even where an earlier generation's route of the
    same path stands in its place (the description shows one operation per method and path)."""

    @property
    def include_in_schema(self) -> bool:
        return True


_CONVERTER = re.compile(r":[a-z]+}")


def _current_routes(app: FastAPI) -> list[RouteContext]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.endpoint.__module__.startswith("app.current."):
            continue
        # Only the operations that are tools: describing every route takes seconds.
        # A path converter (`/{secret:path}`) is not part of the operation's path in the description.
        path = _CONVERTER.sub("}", context.path)
        if any((method, path) in TOOL_NAMES for method in route.methods or ()):
            found.append(_Described(context.route, context._route_context))
    return found


_building = anyio.Lock()


async def operations(app: FastAPI) -> dict[str, Operation]:
    """The tools by name, built once per app (the routes do not change after start). Describing the routes
    takes FastAPI seconds of CPU: it runs on a worker thread so the event loop goes on serving, and `warm`
    lets the application start it before the first MCP client asks."""
    cached = getattr(app.state, "mcp_operations", None)
    if cached is not None:
        return cached
    async with _building:
        cached = getattr(app.state, "mcp_operations", None)
        if cached is None:
            cached = await anyio.to_thread.run_sync(build, app)
    return cached


async def tool_names(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) -> the tool's name, for each operation offered as a tool (`GET /v1/help` says so)."""
    return {(op.method, op.path): op.name for op in (await operations(app)).values()}


async def warm(app: FastAPI) -> None:
    await operations(app)


def build(app: FastAPI) -> dict[str, Operation]:
    doc = get_openapi(title=app.title, version=app.version, routes=_current_routes(app))
    components = doc.get("components", {}).get("schemas", {})
    operations: dict[str, Operation] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            name = TOOL_NAMES.get((method.upper(), path))
            if name is None:
                continue
            described = _operation(name, method.upper(), path, op, components)
            if described is not None:
                operations[name] = described
    app.state.mcp_operations = operations
    return operations


def _operation(name: str, method: str, path: str, op: dict[str, Any], components: dict[str, Any]) -> Operation | None:
    body_schema = None
    body = op.get("requestBody")
    if body is not None:
        json_body = body.get("content", {}).get("application/json")
        if json_body is None:
            return None  # an upload (multipart or raw bytes): not a tool's arguments
        body_schema = _not_null(json_body.get("schema", {}))
    status, success = next(((s, r) for s, r in op.get("responses", {}).items() if s.startswith("2")), ("204", {}))
    answers = set(success.get("content") or {})
    if answers - {"application/json"} or (not answers and status != "204"):
        return None  # bytes (a download declares no JSON) or an event stream
    properties: dict[str, Any] = {}
    required: list[str] = []
    path_params, query_params = [], []
    for param in op.get("parameters", []):
        where = param.get("in")
        if where not in ("path", "query"):
            continue
        schema = dict(param.get("schema", {}))
        if param.get("description"):
            schema["description"] = param["description"]
        schema.pop("title", None)
        properties[param["name"]] = schema
        (path_params if where == "path" else query_params).append(param["name"])
        if param.get("required"):
            required.append(param["name"])
    if body_schema is not None:
        properties["body"] = {**body_schema, "description": "The request body (JSON), as the REST operation takes it"}
        if _has_required(body_schema, components):
            required.append("body")
    input_schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        input_schema["required"] = required
    output_schema = None
    json_out = success.get("content", {}).get("application/json", {}).get("schema")
    if json_out is not None and _is_object(json_out, components):
        output_schema = {"type": "object", **json_out}
    input_schema = _with_defs(input_schema, components)
    if output_schema is not None:
        output_schema = _with_defs(output_schema, components)
    summary = titles.summary(method.lower(), path, op) or op.get("summary") or name
    description = f"{summary}. {op.get('description') or ''}".strip() + f"\n\n(REST: {method} {path})"
    return Operation(
        name=name,
        method=method,
        path=path,
        title=summary,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        path_params=tuple(path_params),
        query_params=tuple(query_params),
        has_body=body_schema is not None,
    )


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional body (`anyOf: [X, null]`) is X: leaving the argument out is how a tool sends none."""
    options = schema.get("anyOf")
    if options:
        kept = [s for s in options if s.get("type") != "null"]
        if len(kept) == 1:
            return dict(kept[0])
    return dict(schema)


def _has_required(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether a body must be sent: one whose fields are all optional may be left out (`{}` is sent)."""
    ref = _REF.match(schema.get("$ref", ""))
    target = components.get(ref.group(1), {}) if ref else schema
    return bool(target.get("required")) or "type" not in target


def _is_object(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    ref = _REF.match(schema.get("$ref", ""))
    target = components.get(ref.group(1), {}) if ref else schema
    return target.get("type") == "object"


def _with_defs(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The schema, self-contained: component references become `$defs` of the tool's own schema."""
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = {}
    pending = _rewrite(schema)
    while pending:
        name = pending.pop()
        if name in defs or name not in components:
            continue
        target = copy.deepcopy(components[name])
        defs[name] = target
        pending |= _rewrite(target)
    if defs:
        schema["$defs"] = defs
    return schema


def _rewrite(node: Any) -> set[str]:
    """Point `#/components/schemas/X` at `#/$defs/X` in place; the names referred to."""
    names: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and (match := _REF.match(ref)):
            node["$ref"] = f"#/$defs/{match.group(1)}"
            names.add(match.group(1))
        for value in node.values():
            names |= _rewrite(value)
    elif isinstance(node, list):
        for value in node:
            names |= _rewrite(value)
    return names

"""MCP resources: the `help` topics (the same as `GET /v1/help`) and the current generation's description.

`bctrl://help` is the overview, `bctrl://help/<topic>` one topic (`bctrl://help/browsers.create`), and
`bctrl://docs/openapi.json` the API description the tools are made from.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from starlette.requests import Request

from app.core.errors import DomainError
from app.current import account_help
from app.mcp import catalog

HELP = account_help.HELP_RESOURCE
OPENAPI = account_help.OPENAPI_RESOURCE
_JSON = "application/json"


def _app(ctx) -> Any:
    request = ctx.request
    if not isinstance(request, Request):
        raise MCPError(types.INTERNAL_ERROR, "No HTTP request behind this MCP request")
    return request.scope["app"]


async def list_resources(ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    app = _app(ctx)
    found = [
        types.Resource(uri=HELP, name="help", title="BCTRL API help: the topics", mime_type=_JSON),
        types.Resource(uri=OPENAPI, name="openapi", title="The API description (OpenAPI 3.1)", mime_type=_JSON),
    ]
    for topic in account_help.overview(app, None, await catalog.tool_names(app)).topics:
        found.append(
            types.Resource(
                uri=f"{HELP}/{topic.topic}",
                name=topic.topic,
                title=topic.title,
                description=topic.summary,
                mime_type=_JSON,
            )
        )
    return types.ListResourcesResult(resources=found)


async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    app = _app(ctx)
    uri = str(params.uri)
    if uri == HELP:
        body: Any = account_help.overview(app, None, await catalog.tool_names(app)).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    elif uri == OPENAPI:
        body = await anyio.to_thread.run_sync(app.openapi)  # seconds of CPU the first time
    elif uri.startswith(HELP + "/"):
        try:
            topic = account_help.topic(app, uri[len(HELP) + 1 :], None, await catalog.tool_names(app))
        except DomainError as exc:
            raise MCPError(types.INVALID_PARAMS, exc.message, {"code": exc.code, "uri": uri}) from None
        body = topic.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}", {"code": "resource.not_found", "uri": uri})
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=_JSON, text=json.dumps(body))]
    )

"""Running a tool: the tool's REST operation, called in process through the whole application.

The call goes through the same ASGI stack as a REST request (middleware, authentication with the caller's
key, scopes, path objects, the service code, the controller lock, idempotency, the error envelope), with
the current generation's `BCTRL-Version`; only the network hop is skipped. So a tool can do nothing its
key could not do over REST, and a revoked key stops working at the next call.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.core import generation
from app.mcp.catalog import Operation

# Headers of the MCP request a tool's REST call carries too: who calls (the key, the subaccount), where
# (the space), and how the caller reached us (so URLs the API builds, such as a CDP endpoint, are the ones
# the caller can use).
FORWARDED = (
    "authorization",
    "bctrl-space",
    "bctrl-subaccount-id",
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "user-agent",
)


@dataclass
class Answer:
    status: int
    body: Any
    content_type: str


def request_parts(op: Operation, arguments: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """The URL path, query and JSON body of the operation for these (already validated) arguments."""
    path = op.path
    for name in op.path_params:
        # Dots encoded too: a bare `.` or `..` segment would be resolved away by the URL, reaching another route.
        path = path.replace("{" + name + "}", quote(str(arguments[name]), safe="").replace(".", "%2E"))
    query = {}
    for name in op.query_params:
        value = arguments.get(name)
        if value is None:
            continue
        query[name] = json.dumps(value) if isinstance(value, dict) else value
    body = arguments.get("body")
    if body is None and op.has_body and op.method != "GET":
        body = {}  # a body whose fields are all optional: the REST operation may still want one
    return path, query, body


async def call(app, scope: dict[str, Any], op: Operation, arguments: dict[str, Any]) -> Answer:
    """Run the operation through `app` as the MCP request's caller."""
    headers = {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope.get("headers", [])
        if key.decode("latin-1").lower() in FORWARDED
    }
    headers["BCTRL-Version"] = generation.CURRENT
    path, query, body = request_parts(op, arguments)
    if op.has_body and body is not None:
        headers["content-type"] = "application/json"
    host = headers.get("host") or "127.0.0.1"
    transport = httpx.ASGITransport(app=app, client=tuple(scope.get("client") or ("127.0.0.1", 0)))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scope.get('scheme', 'http')}://{host}") as client:
        response = await client.request(
            op.method,
            path,
            params=query,
            headers=headers,
            content=json.dumps(body).encode() if op.has_body and body is not None else None,
        )
    kind = response.headers.get("content-type", "")
    if "json" in kind:
        parsed: Any = response.json() if response.content else None
    elif kind.startswith("image/"):
        parsed = base64.b64encode(response.content).decode()
    else:
        parsed = response.text
    return Answer(response.status_code, parsed, kind)

"""The MCP server at `/_mcp/server`: Streamable HTTP (the official `mcp` SDK), stateless.

Every HTTP request stands alone: it is authenticated with the caller's API key (Bearer, as REST), served
by a session manager made for it and gone after it, and keeps nothing in the process. So any replica
serves any request, a client never has a session to lose, and a key revoked between two calls fails the
second. Tool calls run their REST operation in process (`dispatch.py`); what they change lives in the
database like everything the API does.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.accounts import scopes
from app.accounts.auth import SUBACCOUNT_HEADER
from app.accounts.service import authenticate
from app.core import generation
from app.core.context import acting_channel
from app.core.errors import DomainError, envelope
from app.mcp import catalog, dispatch, resources, results

PATH = "/_mcp/server"
_KEY_SCOPES = "bctrl.mcp.key_scopes"
# The SDK says at INFO that a session manager starts and stops: with one per request, that is two lines
# a request. Its warnings and errors still come through.
logging.getLogger("mcp.server.streamable_http_manager").setLevel(logging.WARNING)


def _http_scope(ctx) -> dict[str, Any]:
    request = ctx.request
    if not isinstance(request, Request):  # only Streamable HTTP reaches this server
        raise MCPError(types.INTERNAL_ERROR, "No HTTP request behind this MCP request")
    return request.scope


async def _list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    scope = _http_scope(ctx)
    operations = await catalog.operations(scope["app"])
    # A key narrowed by scopes sees the tools it may call (the call is checked again as the REST request).
    held = scope.get(_KEY_SCOPES)
    usable = [op for op in operations.values() if scopes.covers(held, scopes.required(op.method, op.path))]
    return types.ListToolsResult(tools=[_tool(op) for op in usable])


def _tool(op: catalog.Operation) -> types.Tool:
    return types.Tool(
        name=op.name,
        title=op.title,
        description=op.description,
        input_schema=op.input_schema,
        output_schema=op.output_schema,
        annotations=types.ToolAnnotations(
            title=op.title,
            read_only_hint=op.method == "GET",
            destructive_hint=op.method == "DELETE",
            idempotent_hint=op.method in ("GET", "PUT", "DELETE"),
            open_world_hint=False,
        ),
    )


_validators: dict[str, Draft202012Validator] = {}


def _check(op: catalog.Operation, arguments: dict[str, Any]) -> None:
    """Arguments against the tool's input schema: an MCP error naming each bad field (not a REST call)."""
    validator = _validators.get(op.name)
    if validator is None:
        validator = _validators[op.name] = Draft202012Validator(op.input_schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    fields = []
    for error in errors:
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            # The missing property is named in the message, not the path.
            missing = error.message.split("'")[1] if "'" in error.message else ""
            where = f"{where}.{missing}" if where else missing
        elif error.validator == "additionalProperties":
            extra = error.message.split("'")[1] if "'" in error.message else ""
            where = f"{where}.{extra}" if where else extra
        fields.append({"field": where or "(arguments)", "message": error.message})
    names = ", ".join(f["field"] for f in fields)
    raise MCPError(
        types.INVALID_PARAMS,
        f"Invalid arguments for {op.name}: {names}: {fields[0]['message']}",
        {"code": "request.invalid", "fields": fields},
    )


async def _call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    scope = _http_scope(ctx)
    app = scope["app"]
    op = (await catalog.operations(app)).get(params.name)
    if op is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}", {"code": "tool.not_found"})
    arguments = params.arguments or {}
    _check(op, arguments)
    # The events the call writes in a browser say `channel: tool` (app/browsing/access.py).
    token = acting_channel.set("tool")
    try:
        # Shielded: a client that goes away mid-call does not cut the operation in half; it completes
        # (as a REST call does when its client disconnects) and its answer is dropped.
        with anyio.CancelScope(shield=True):
            answer = await dispatch.call(app, scope, op, arguments)
    finally:
        acting_channel.reset(token)
    return results.of(op, answer)


server: Server[Any] = Server(
    "bctrl-server",
    version="0.1.0",
    title="bctrl-server",
    instructions=(
        "Tools of the BCTRL API (BCTRL-Version 2026-10-03): create a browser (bctrl_browsers_create), open "
        "and drive pages, use the computer, read a run's events. Each tool runs the REST operation of the "
        "same name with your API key. Read the `bctrl://help` resources for the topics."
    ),
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
    on_list_resources=resources.list_resources,
    on_read_resource=resources.read_resource,
)


class Endpoint:
    """The ASGI app of /_mcp/server: the key is checked before the SDK sees the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await _refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope.get("method") == "POST":
            try:
                body = await Request(scope, receive).body()
            except ClientDisconnect:
                return  # the caller left before its request arrived: nothing was done, nobody to answer
            receive = _replay(body, receive)
        await serve_stateless(server, scope, receive, send)


async def serve_stateless(app_server: Server, scope: Scope, receive: Receive, send: Send) -> None:
    """One request through a session manager made for it: stateless mode keeps nothing between requests,
    so nothing is shared and any replica serves any request."""
    manager = StreamableHTTPSessionManager(
        app=app_server, stateless=True, json_response=True, session_idle_timeout=None, max_sessions=None
    )
    async with manager.run():
        await manager.handle_request(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's body, read already, then the connection's own messages (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refusal(scope: Scope) -> JSONResponse | None:
    """401 in the current generation's envelope when the key is missing, unknown, revoked or expired."""
    request = Request(scope)
    ctx = scope["app"].state.ctx
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else None
    token = generation.set_current(generation.CURRENT)
    try:
        principal = await authenticate(ctx.db, secret, ctx.api_keys, request.headers.get(SUBACCOUNT_HEADER))
        scope[_KEY_SCOPES] = list(principal.scopes or ())
    except DomainError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="bctrl"'} if exc.status == 401 else None
        return envelope(exc.status, exc.code, exc.message, exc.details, headers)
    finally:
        generation.reset(token)
    return None


def route() -> Route:
    return Route(PATH, endpoint=Endpoint(), methods=["GET", "POST", "DELETE"], name="mcp")

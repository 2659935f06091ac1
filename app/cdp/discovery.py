"""The http(s) form of a lease endpoint: `/json/version` and `/json/list` for clients that discover
the websocket URL themselves (Playwright's `connect_over_cdp("http://...")`). Every websocket URL in
the answers points back at the proxy, with the same lease and token."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Query, Request

from app.accounts.auth import CtxDep
from app.connections import service as connections
from app.core.errors import NotFound, Unavailable
from app.core.schemas import errors

router = APIRouter(prefix="/v1/cdp", tags=["cdp"])

_VERSION = ("/version", "/version/")
_LIST = ("", "/", "/list", "/list/")


@router.get("/{connection_id}/json{rest:path}", responses=errors(404, 409, 503))
async def discovery(
    ctx: CtxDep,
    request: Request,
    connection_id: str,
    rest: str,
    token: str | None = Query(None, description="The lease's token"),
) -> Any:
    """`/json/version` and `/json/list` (trailing slash or not), authenticated by the lease token."""
    if rest not in _VERSION + _LIST:
        raise NotFound("No such discovery endpoint", code="route.not_found")
    ticket = await connections.authorize_attach(ctx, connection_id, token, attaching=False)
    ws_url, _ = connections.endpoint_urls(ctx, ticket.connection_id, token or "")
    base, query = ws_url.split("?", 1)
    try:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            upstream = await client.get(f"{ticket.upstream_http}/json{'/version' if rest in _VERSION else '/list'}")
            upstream.raise_for_status()
    except httpx.HTTPError:
        raise Unavailable(
            "The browser did not answer", code="runtime.host_unavailable", details={"runtimeId": str(ticket.runtime_id)}
        ) from None
    payload = upstream.json()
    if rest in _VERSION:
        payload["webSocketDebuggerUrl"] = ws_url
        return payload
    for target in payload:
        local = target.get("webSocketDebuggerUrl")
        if local:
            path = "/devtools/" + local.split("/devtools/", 1)[1]
            target["webSocketDebuggerUrl"] = f"{base}{path}?{query}"
        # These point at the browser's own address, which clients cannot and should not reach.
        target.pop("devtoolsFrontendUrl", None)
        target.pop("devtoolsFrontendUrlCompat", None)
    return payload

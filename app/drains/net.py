"""Where a drain may send, and sending there.

A drain's URL is the user's: its host is resolved once per delivery and every address is checked the
way the egress proxy checks a browser's destination (`EgressPolicy`): the control plane's own services
(this API, its database and Redis, the egress proxy, browsers' debugging ports) and link-local/metadata
addresses are always refused; loopback and private ranges only with `BCTRL_DRAIN_EGRESS=private`. The
request then connects to a checked address, never to the name again (which could answer differently
by then), with the name kept as the Host header and TLS server name."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.core.context import AppContext
from app.egress.policy import EgressPolicy
from app.egress.service import server_policy, server_refusal

# What a destination's answer may be read up to (only its status matters; the rest names an error).
ANSWER_LIMIT = 4096


class Refused(Exception):
    """The destination may not be sent to (or cannot be found): a message for `lastError`/the API."""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def policy(ctx: AppContext) -> EgressPolicy:
    return server_policy(ctx.settings.drain_egress, ctx.settings, ctx.driver)


def _addresses(ctx: AppContext, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the port is invalid") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Refused(f"the host name {parts.hostname!r} does not resolve") from None
    checker = policy(ctx)
    found: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        reason = server_refusal(checker, address, port)
        if reason:
            reason = reason.replace("from browsers", "by drains")
            if "private and loopback" in reason:
                reason = "private and loopback addresses are not reachable by drains (BCTRL_DRAIN_EGRESS=private)"
            raise Refused(f"{parts.hostname}: {reason}")
        if str(address) not in found:
            found.append(str(address))
    if not found:
        raise Refused(f"the host name {parts.hostname!r} does not resolve")
    return found


async def addresses(ctx: AppContext, url: str) -> list[str]:
    """The checked addresses of `url`'s host (Refused otherwise). DNS and /proc: off the event loop."""
    return await asyncio.to_thread(_addresses, ctx, url)


async def send(
    ctx: AppContext, method: str, url: str, body: bytes, headers: dict[str, str], *, checked: list[str] | None = None
) -> Answer:
    """One request to `url` at a checked address; its status and the start of its answer. Transport
    errors raise httpx errors; a refused destination raises Refused."""
    found = checked if checked is not None else await addresses(ctx, url)
    target = httpx.URL(url)
    headers = {**headers, "host": target.netloc.decode("ascii"), "accept-encoding": "identity"}
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    timeout = httpx.Timeout(ctx.settings.drains_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for n, address in enumerate(found):
            try:
                async with client.stream(
                    method, target.copy_with(host=address), content=body, headers=headers, extensions=extensions
                ) as response:
                    data = bytearray()
                    async for chunk in response.aiter_raw():
                        data += chunk
                        if len(data) >= ANSWER_LIMIT:
                            break
                    return Answer(response.status_code, bytes(data[:ANSWER_LIMIT]).decode("utf-8", "replace"))
            except httpx.ConnectError:
                if n == len(found) - 1:
                    raise
    raise Refused("no address to connect to")

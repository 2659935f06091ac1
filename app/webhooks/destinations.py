"""Where a webhook may be delivered: an http(s) URL whose host resolves only to allowed addresses.

A URL is the account's input and the server calls it: without a check the server would be a proxy into
its own host and network. Every resolved address is checked as the egress proxy checks a browser's
destination (`app/egress/policy.py`), in the mode `BCTRL_WEBHOOK_EGRESS`: `public` (default) refuses
loopback and private addresses, `private` allows them (tests run their receivers on 127.0.0.1). In
either mode the control plane's own services (this API, its database and Redis, the egress proxy, browsers'
debugging ports: the rules drains follow, `app/egress/service.server_policy`) and link-local/metadata
addresses are refused. A delivery connects to the addresses checked, never to the name again."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app.core.context import AppContext
from app.egress.policy import EgressPolicy
from app.egress.service import server_policy, server_refusal


class Refused(Exception):
    """The URL may not be called; the message says why (no secret in it)."""


class Unresolved(Refused):
    """The URL's host name does not resolve (now)."""


def check_url(url: str) -> None:
    """The URL's shape alone: absolute http(s) with a host, no credentials, no fragment."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise Refused("the URL is malformed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("a webhook URL is an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("a webhook URL carries no credentials (deliveries are signed instead)")
    if parts.fragment:
        raise Refused("a webhook URL has no #fragment")


def policy_for(ctx: AppContext) -> EgressPolicy:
    """The rules for webhook destinations (resolves the control plane's endpoints: blocking)."""
    return server_policy(ctx.settings.webhook_egress, ctx.settings, ctx.driver)


def addresses(ctx: AppContext, url: str, policy: EgressPolicy | None = None) -> list[str]:
    """The addresses to call `url` at (Refused if the name does not resolve or any address is refused).
    Blocking (DNS, /proc): run it in a thread."""
    check_url(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    policy = policy or policy_for(ctx)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Unresolved("the webhook's host name does not resolve") from None
    found: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        reason = server_refusal(policy, address, port)
        if reason:
            raise Refused(reason.replace("from browsers", "as webhooks").replace("BROWSER_EGRESS", "WEBHOOK_EGRESS"))
        if str(address) not in found:
            found.append(str(address))
    if not found:
        raise Unresolved("the webhook's host name does not resolve")
    return found

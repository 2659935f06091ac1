"""Starting the egress proxy for a server: its policy names this server's own services."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from app.core.config import Settings
from app.egress.policy import EgressPolicy, endpoint_of_url
from app.egress.proxy import EgressProxy

log = structlog.get_logger(__name__)


def control_plane(settings: Settings) -> list[tuple[str, int]]:
    endpoints = [(settings.host, settings.port)]
    for url, default in ((settings.database_url, 5432), (settings.redis_url, 6379)):
        if endpoint := endpoint_of_url(url, default):
            endpoints.append(endpoint)
    return endpoints


def server_policy(mode: str, settings: Settings, driver) -> EgressPolicy:
    """The rules for the server's own calls to addresses an account gives (webhooks, drains): the egress
    proxy's in `mode`, refusing as well the browsers' debugging ports and the egress proxy's own ports
    (its `local_blocked`, looked up on each check: the proxy may start after this is built). Blocking
    (resolves the control plane's endpoints)."""
    devtools = getattr(driver, "devtools_ports", None)

    def local_ports() -> set[int]:
        ports = set(devtools() if devtools else ())
        proxy_policy = getattr(driver, "egress_policy", None)
        if proxy_policy is not None:
            ports |= proxy_policy.local_blocked
        return ports

    return EgressPolicy(mode, control_plane(settings), local_ports=local_ports)


def server_refusal(policy: EgressPolicy, ip, port: int) -> str | None:
    """`policy.refusal`, and a debugging port on this host that the driver does not know of (another
    server's browser, an adopted one). Blocking (reads /proc): run it in a thread."""
    reason = policy.refusal(ip, port)
    if reason is None and policy.devtools_listener(ip, port):
        reason = "the control plane's own services are not reachable from browsers"
    return reason


async def start(settings: Settings, driver) -> EgressProxy:
    """Listen, and tell the driver to send its browsers through this proxy."""
    policy = EgressPolicy(
        settings.browser_egress, control_plane(settings), local_ports=getattr(driver, "devtools_ports", None)
    )
    # The port of the last run when free: browsers adopted after a restart keep reaching the web.
    port_file = Path(settings.data_dir) / "egress.port"
    port = settings.egress_port
    if not port:
        with contextlib.suppress(OSError, ValueError):
            port = int(await asyncio.to_thread(port_file.read_text))
    # Ports of browsers' entrances, held after a restart (app/egress/proxy.py).
    entrances_file = Path(settings.data_dir) / "egress.entrances"
    proxy = EgressProxy(policy, settings.egress_host, port, entrances_file)
    try:
        await proxy.start()
    except OSError:
        if settings.egress_port:
            raise
        proxy = EgressProxy(policy, settings.egress_host, 0, entrances_file)
        await proxy.start()
    with contextlib.suppress(OSError):
        await asyncio.to_thread(port_file.write_text, str(proxy.port))
    driver.proxy_url = proxy.url
    driver.serve_proxy = proxy.also_serve
    # A browser with a proxy of its own gets an entrance of its own (released when it stops), and a
    # saved proxy's test checks the proxy's address with the same policy.
    driver.proxy_entrance = proxy.entrance
    driver.proxy_release = proxy.release
    driver.proxy_checked = proxy.checked_upstream
    # Other callers of user-given addresses (webhook tools) refuse what the proxy refuses.
    driver.egress_policy = policy
    log.info("egress_proxy_ready", url=proxy.url, mode=policy.mode, blocked_ports=sorted(policy.local_blocked))
    return proxy

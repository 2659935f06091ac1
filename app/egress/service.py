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
    proxy = EgressProxy(policy, settings.egress_host, port)
    try:
        await proxy.start()
    except OSError:
        if settings.egress_port:
            raise
        proxy = EgressProxy(policy, settings.egress_host, 0)
        await proxy.start()
    with contextlib.suppress(OSError):
        await asyncio.to_thread(port_file.write_text, str(proxy.port))
    driver.proxy_url = proxy.url
    driver.serve_proxy = proxy.also_serve
    log.info("egress_proxy_ready", url=proxy.url, mode=policy.mode, blocked_ports=sorted(policy.local_blocked))
    return proxy

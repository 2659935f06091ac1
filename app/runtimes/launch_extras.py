"""A browser's launch settings beyond its `config`: its `launch_options` (the current generation's
create words) resolved into `LaunchSpec` fields just before the browser launches.

Each setting is resolved by the package that owns it (saved proxies, uploaded extensions); one that
cannot be honoured any more raises `DriverError` with its code, and the run fails with it.
"""

from __future__ import annotations

from typing import Any

from app.core.context import AppContext
from app.extensions import service as extensions
from app.proxies import service as proxies
from app.runtimes.models import Runtime


async def resolve(ctx: AppContext, runtime: Runtime) -> dict[str, Any]:
    options = runtime.launch_options or {}
    extras: dict[str, Any] = {}
    if options.get("headless") is False:
        extras["headless"] = False
    if options.get("networkTraffic"):
        extras["traffic"] = options["networkTraffic"]
    if options.get("location"):
        extras["location"] = options["location"]
    if options.get("webRtcProxyOnly"):
        extras["web_rtc_proxy_only"] = True
    if options.get("extensions"):
        extras["extensions"] = await extensions.unpacked_dirs(ctx, runtime.account_id, options["extensions"])
    if options.get("proxy"):
        extras["proxy"] = await proxy_upstream(ctx, runtime)
    return extras


async def proxy_upstream(ctx: AppContext, runtime: Runtime) -> str | None:
    """The upstream proxy URL (credentials included) the browser's traffic leaves through, or None."""
    stored = (runtime.launch_options or {}).get("proxy")
    return await proxies.launch_upstream(ctx, runtime.account_id, stored) if stored else None

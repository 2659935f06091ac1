"""Launch options checked and prepared before a create or update keeps them: ids of saved proxies and
extensions must name the caller's own, and secrets in an inline proxy are stored encrypted. Each
setting's package does its part; this module only calls them in turn."""

from __future__ import annotations

from app.accounts.service import Principal
from app.core.context import AppContext
from app.extensions import service as extensions
from app.proxies import service as proxies
from app.usage import locations


async def prepare(ctx: AppContext, p: Principal, options: dict) -> dict:
    """The options as they will be stored; raises the setting's documented error when one is refused."""
    if options.get("extensions") is not None:
        options = {**options, "extensions": await extensions.check_ids(ctx, p, options["extensions"]) or None}
    if options.get("proxy") is not None:
        options = {**options, "proxy": await proxies.prepare_setting(ctx, p, options["proxy"])}
    if options.get("location") is not None:
        options = {**options, "location": await locations.check(ctx, options["location"])}
    return options

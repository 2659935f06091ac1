"""Where browsers can run here. With the local and Docker drivers: one location, this deployment's
driver on this host (id `local`, the word a browser's `location` already takes), `available` while
admission has a free slot. With a driver that places browsers on nodes (the Swarm driver's `nodes()`):
one location per node label value, with the nodes' free capacity."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.core.context import AppContext
from app.core.errors import InvalidRequest
from app.runtimes.models import Runtime, RuntimeStatus

LOCAL = "local"
# Anywhere the deployment has room: the default.
AUTO = "auto"
# The data homes a browser here can use: spaces are kept on this deployment (their region is `local`).
HOME_REGIONS = ("local",)
_NAMES = {
    "local": "This host (local Chromium)",
    "docker": "This host (Docker engine)",
    "swarm": "This swarm (Docker Swarm services)",
}


@dataclass(frozen=True)
class Location:
    id: str
    name: str
    status: str  # available | unavailable
    home_regions: tuple[str, ...]
    nodes: int | None = None  # nodes the driver may place browsers on there (placing drivers only)
    slots: int | None = None  # browsers those nodes hold when empty
    free: int | None = None  # browsers they can take now


async def offered(ctx: AppContext) -> list[Location]:
    nodes = getattr(ctx.driver, "nodes", None)
    if nodes is not None:
        return _by_label(ctx, await nodes())
    async with ctx.db.read() as s:
        live = (
            await s.execute(
                select(func.count())
                .select_from(Runtime)
                .where(Runtime.status.in_(RuntimeStatus.LIVE), Runtime.deleted_at.is_(None))
            )
        ).scalar_one()
    driver = ctx.settings.driver
    status = "available" if live < ctx.settings.max_runtimes else "unavailable"
    return [
        Location(id=LOCAL, name=_NAMES.get(driver, f"This host ({driver})"), status=status, home_regions=HOME_REGIONS)
    ]


def _by_label(ctx: AppContext, nodes: list) -> list[Location]:
    by: dict[str, list] = {}
    for node in nodes:
        if node.available:
            by.setdefault(node.location, []).append(node)
    return [
        Location(
            id=location,
            name=f"Swarm nodes labelled {location}" if location != LOCAL else "Swarm nodes without a location label",
            status="available" if any(n.free > 0 for n in group) else "unavailable",
            home_regions=HOME_REGIONS,
            nodes=len(group),
            slots=sum(n.slots for n in group),
            free=sum(n.free for n in group),
        )
        for location, group in sorted(by.items())
    ]


async def check(ctx: AppContext, location: str) -> str | None:
    """The location a create or update asks for, as stored (None for `auto`); 400
    `browser.option_unsupported` naming the offered ones when this deployment has no such location."""
    if location == AUTO:
        return None
    known = [where.id for where in await offered(ctx)]
    if location not in known:
        why = f"this server offers {', '.join([AUTO, *known])}"
        raise InvalidRequest(
            f"location is not supported by this server: {why}",
            code="browser.option_unsupported",
            details={
                "fields": [{"field": "location", "in": "body", "message": why, "type": "unsupported"}],
                "value": location,
            },
        )
    return location


def placed(runtime: Runtime) -> str:
    """Where a browser is (the node's location its driver reported), else where it asked to be, else local."""
    return (runtime.driver_state or {}).get("location") or (runtime.launch_options or {}).get("location") or LOCAL

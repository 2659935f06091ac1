"""Deleting a space in the current generation: its running browsers are stopped first, then the space
goes with everything in it (the service's delete, which every generation shares, removes the browsers'
saved-state archives too). Seed and flat refuse while a runtime in the space is live; the current
contract stops them instead."""

from __future__ import annotations

from app.accounts.service import Principal
from app.core.context import AppContext
from app.core.errors import Conflict
from app.core.paging import PageParams
from app.runtimes import service as runtimes
from app.runtimes.models import RuntimeStatus
from app.runtimes.service import RuntimeFilter
from app.spaces import service as spaces
from app.spaces.models import Space

_BATCH = 200


def default_not_deletable(space: Space) -> Conflict:
    return Conflict(
        "The default space cannot be deleted", code="space.default_not_deletable", details={"spaceId": str(space.id)}
    )


async def delete_with_browsers(ctx: AppContext, p: Principal, space: Space) -> None:
    if space.is_default:
        raise default_not_deletable(space)
    first = PageParams(limit=_BATCH, after=None)
    live = RuntimeFilter(space=space, statuses=list(RuntimeStatus.LIVE))
    # Each live runtime through its own delete, which stops it without keeping its profile. A deleted
    # runtime leaves the list, so each round reads the first page again until none is left.
    while rows := (await runtimes.list_runtimes(ctx, p, first, live))[0]:
        for runtime in rows:
            await runtimes.delete(ctx, runtime, force=True)
    try:
        await spaces.delete_space(ctx, space)
    except Conflict as busy:
        # A browser started in the space while its others were being deleted.
        raise Conflict(
            "A browser started in the space while it was being deleted; retry the delete",
            code="space.has_active_runtimes",
            details=busy.details,
        ) from None

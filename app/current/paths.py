"""Path objects of the current generation: the space a request is scoped to (`?spaceId`, else the
`BCTRL-Space` header) and the browser `{browserId}` names, by id or by its unique name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from app.accounts.auth import CtxDep, PrincipalDep
from app.runtimes import service as runtimes
from app.runtimes.models import Runtime
from app.spaces import service as spaces
from app.spaces.models import Space

SpaceQuery = Annotated[str | None, Query(alias="spaceId", max_length=64, description="Space id or `default`")]
SpaceHeader = Annotated[
    str | None, Header(alias="BCTRL-Space", max_length=64, description="Scope selector when spaceId is absent")
]


def chosen_space(space_id: str | None, header: str | None) -> str | None:
    return space_id if space_id is not None else header


async def scope_space(ctx: CtxDep, p: PrincipalDep, space_id: SpaceQuery = None, header: SpaceHeader = None):
    """The space the request names, or None (then the whole account)."""
    chosen = chosen_space(space_id, header)
    return None if chosen is None else await spaces.get(ctx, p, chosen)


ScopeSpace = Annotated[Space | None, Depends(scope_space)]


async def path_browser(ctx: CtxDep, p: PrincipalDep, browser_id: str, space: ScopeSpace) -> Runtime:
    return await runtimes.find(ctx, p, browser_id, space)


PathBrowser = Annotated[Runtime, Depends(path_browser)]

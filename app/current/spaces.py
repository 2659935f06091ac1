"""`/v1/spaces` in the current generation's shape (`BCTRL-Version` >= 2026-10-03; the seed and flat
routes serve the same paths without it): create, list, get, update, delete. `default` is accepted as the
id of the account's default space. The environment's `ai.credentialIds` is the space's AI credential
allow list (our `mounts.ai.allowConnections`); the mounts of the earlier generations are kept as they are."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.generation import CurrentRoute
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.paths import SpaceHeader
from app.current.schemas import Order
from app.current.space_delete import delete_with_browsers
from app.current.space_schemas import AiOut, EnvironmentOut, SpaceCreate, SpaceOut, SpacePage, SpaceUpdate
from app.spaces import service as spaces
from app.spaces.models import Space
from app.spaces.paths import PathSpace

# Out of /openapi.json, which describes the earlier shapes of these paths (as app/current/runs.py).
router = APIRouter(prefix="/v1/spaces", tags=["spaces (current)"], route_class=CurrentRoute, include_in_schema=False)
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]


async def header_space(ctx: CtxDep, p: PrincipalDep, header: SpaceHeader = None) -> Space | None:
    """`BCTRL-Space`, when sent, must name a space of the account (404 otherwise), on every route."""
    return None if header is None else await spaces.get(ctx, p, header)


HeaderSpace = Annotated[Space | None, Depends(header_space)]


def space_out(space: Space, *, status: str = "active") -> SpaceOut:
    allowed = ((space.mounts or {}).get("ai") or {}).get("allowConnections")
    return SpaceOut(
        id=str(space.id),
        name=space.name,
        region=space.region,
        status=status,
        environment=EnvironmentOut(ai=AiOut(credential_ids=list(allowed)) if allowed else None),
        is_default=space.is_default,
        created_at=space.created_at,
        updated_at=space.updated_at,
    )


async def _mounts(ctx: CtxDep, p: PrincipalDep, current: dict[str, Any] | None, env: dict[str, Any]) -> dict:
    """The space's mounts with the environment's AI credential list applied (a merge patch: `ai: null`
    or `credentialIds: null` clears it); the other generations' mounts stay."""
    mounts = {**(current or {})}
    if "ai" not in env:
        return mounts
    ai = {**(mounts.get("ai") or {})}
    given = (env["ai"] or {}).get("credential_ids")
    if given:
        ai["allowConnections"] = await spaces.check_ai_connections(ctx, p.account_id, given)
    elif env["ai"] is None or "credential_ids" in env["ai"]:
        ai.pop("allowConnections", None)
    if ai:
        mounts["ai"] = ai
    else:
        mounts.pop("ai", None)
    return mounts


def _environment(body: SpaceCreate | SpaceUpdate) -> dict[str, Any]:
    return body.environment.model_dump(exclude_unset=True, by_alias=False) if body.environment is not None else {}


@router.post("", status_code=201, response_model=SpaceOut, responses=errors(400, 404, 409))
async def create_space(
    ctx: CtxDep, p: PrincipalDep, body: SpaceCreate, idem: IdempotencyDep, _scope: HeaderSpace
) -> SpaceOut:
    """Create a space; its name is unique among the account's spaces (409 `space.name_conflict`)."""

    async def make() -> SpaceOut:
        mounts = await _mounts(ctx, p, {}, _environment(body))
        return space_out(await spaces.create_named(ctx, p, name=body.name, mounts=mounts, region=body.region))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("", response_model=SpacePage, responses=errors(400, 404))
async def list_spaces(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    _scope: HeaderSpace,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
) -> SpacePage:
    """The account's spaces. `BCTRL-Space` does not narrow it (spaces are not inside a space), but it
    must name a space of the account."""
    rows, cursor = await spaces.list_spaces(ctx, p, page, newest_first=order == "desc")
    return SpacePage(data=[space_out(s) for s in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get("/{space_id}", response_model=SpaceOut, responses=errors(404))
async def get_space(space: PathSpace) -> SpaceOut:
    return space_out(space)


@router.patch("/{space_id}", response_model=SpaceOut, responses=errors(400, 404, 409))
async def update_space(ctx: CtxDep, p: PrincipalDep, space: PathSpace, body: SpaceUpdate) -> SpaceOut:
    """Rename the space or change its environment; what is not sent stays."""
    env = _environment(body)
    mounts = await _mounts(ctx, p, space.mounts, env) if "ai" in env else None
    return space_out(await spaces.change(ctx, space, name=body.name, mounts=mounts))


@router.delete("/{space_id}", response_model=SpaceOut, responses=errors(404, 409))
async def delete_space(
    ctx: CtxDep,
    p: PrincipalDep,
    space: PathSpace,
    wait: Annotated[int, Query(ge=0, le=60, description="Accepted; the deletion always finishes first")] = 0,
) -> SpaceOut:
    """Stop and delete the space's browsers, then the space with its runs, files and views; answers
    with `status: deleted` once it is gone. The default space is 409 `space.default_not_deletable`."""
    await delete_with_browsers(ctx, p, space)
    return space_out(space, status="deleted")

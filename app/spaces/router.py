from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import Deleted, errors
from app.spaces import service
from app.spaces.paths import PathSpace
from app.spaces.schemas import SpaceCreate, SpaceList, SpaceOut, SpaceUpdate

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


@router.get("", response_model=SpaceList, responses=errors(400))
async def list_spaces(ctx: CtxDep, p: PrincipalDep, page: Annotated[PageParams, Depends(page_params)]) -> SpaceList:
    spaces, cursor = await service.list_spaces(ctx, p, page)
    return SpaceList.of(spaces, cursor)


@router.post("", status_code=201, response_model=SpaceOut, responses=errors(400, 409, 413))
async def create_space(ctx: CtxDep, p: PrincipalDep, body: SpaceCreate, idem: IdempotencyDep):
    async def make() -> SpaceOut:
        return SpaceOut.of(await service.create(ctx, p, body))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{space_id}", response_model=SpaceOut, responses=errors(404))
async def get_space(space: PathSpace) -> SpaceOut:
    """`default` is accepted as the id of the account's default space."""
    return SpaceOut.of(space)


@router.patch("/{space_id}", response_model=SpaceOut, responses=errors(400, 404))
async def update_space(ctx: CtxDep, space: PathSpace, body: SpaceUpdate) -> SpaceOut:
    return SpaceOut.of(await service.update(ctx, space, body))


@router.delete("/{space_id}", response_model=Deleted, responses=errors(404, 409))
async def delete_space(ctx: CtxDep, space: PathSpace) -> Deleted:
    """Deletes the space with its stopped runtimes and their runs; refused while a runtime in it is live."""
    return Deleted(id=str(await service.delete_space(ctx, space)))

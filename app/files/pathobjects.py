"""Path objects for space storage: the file a route's path names, resolved once by the router (an
unknown id, another account's, or one outside the path's space is 404), as for runtimes
(runtimes/paths.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.files import service
from app.files.models import StorageFile
from app.spaces.paths import PathSpace


async def seed_file(ctx: CtxDep, p: PrincipalDep, space: PathSpace, file_id: str) -> StorageFile:
    row = await service.get(ctx, p, file_id)
    if row.space_id != space.id:
        raise service.file_not_found(file_id)
    return row


async def flat_file(ctx: CtxDep, p: PrincipalDep, file_id: str) -> StorageFile:
    return await service.get(ctx, p, file_id)


SeedFile = Annotated[StorageFile, Depends(seed_file)]
FlatFile = Annotated[StorageFile, Depends(flat_file)]

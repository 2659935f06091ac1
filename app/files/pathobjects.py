"""Path objects for space storage: the file a route's path names, resolved once by the router (an
unknown id, another account's, or one outside the named space is 404). As for runtimes
(runtimes/paths.py), used so far on routes without a body or validated parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.files import service
from app.files.models import StorageFile


async def seed_file(ctx: CtxDep, p: PrincipalDep, space_id: str, file_id: str) -> StorageFile:
    return await service.get(ctx.db, p, file_id, space_id=space_id)


async def flat_file(ctx: CtxDep, p: PrincipalDep, file_id: str) -> StorageFile:
    return await service.get(ctx.db, p, file_id)


SeedFile = Annotated[StorageFile, Depends(seed_file)]
FlatFile = Annotated[StorageFile, Depends(flat_file)]

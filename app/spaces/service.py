"""Spaces: the task and permission boundary that runtimes, files and credentials live in."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.artifacts.models import Artifact
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.files.models import StorageFile
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces.models import Space
from app.spaces.schemas import SpaceCreate, SpaceUpdate
from app.storage import make_store

DEFAULT_REGION = "local"
DEFAULT_SPACE_NAME = "default"


def space_not_found(space_id: object) -> NotFound:
    return NotFound("Space not found", code="space.not_found", details={"spaceId": str(space_id)})


async def create(ctx: AppContext, p: Principal, body: SpaceCreate) -> Space:
    now = clock.now()
    space = Space(
        id=ids.new_id(),
        account_id=p.account_id,
        name=body.name,
        region=body.region or DEFAULT_REGION,
        metadata_=body.metadata,
        mounts=body.mounts.model_dump(by_alias=True, exclude_none=True) if body.mounts else {},
        is_default=False,
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(space)
    return space


async def get(ctx: AppContext, p: Principal, space_id: str) -> Space:
    """`default` names the account's default space, created on first use."""
    if space_id == "default":
        return await default_space(ctx, p)
    space = await get_owned(ctx.db, Space, space_id, p.account_id)
    if space is None:
        raise space_not_found(space_id)
    return space


async def resolve(ctx: AppContext, p: Principal, space_id: str | None) -> Space:
    """Flat routes: a missing spaceId means the account's default space."""
    return await default_space(ctx, p) if space_id is None else await get(ctx, p, space_id)


async def default_space(ctx: AppContext, p: Principal) -> Space:
    stmt = select(Space).where(Space.account_id == p.account_id, Space.is_default.is_(True))
    async with ctx.db.read() as s:
        space = (await s.execute(stmt)).scalar_one_or_none()
    if space is not None:
        return space
    now = clock.now()
    space = Space(
        id=ids.new_id(),
        account_id=p.account_id,
        name=DEFAULT_SPACE_NAME,
        region=DEFAULT_REGION,
        metadata_=None,
        mounts={},
        is_default=True,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            s.add(space)
        return space
    except IntegrityError:
        # Another request created it first; the unique index kept it single.
        async with ctx.db.read() as s:
            return (await s.execute(stmt)).scalar_one()


async def list_spaces(ctx: AppContext, p: Principal, page: PageParams) -> tuple[list[Space], str | None]:
    return await fetch_by_id(ctx.db, select(Space).where(Space.account_id == p.account_id), Space.id, page)


async def update(ctx: AppContext, space: Space, body: SpaceUpdate) -> Space:
    changes = body.model_fields_set  # field names (a dump would give the camelCase aliases)
    async with ctx.db.transaction() as s:
        space = await s.merge(space)
        if "name" in changes and body.name is not None:
            space.name = body.name
        if "region" in changes and body.region is not None:
            space.region = body.region
        if "metadata" in changes:
            space.metadata_ = body.metadata
        if "mounts" in changes:
            space.mounts = body.mounts.model_dump(by_alias=True, exclude_none=True) if body.mounts else {}
        space.updated_at = clock.now()
    return space


async def delete_space(ctx: AppContext, space: Space) -> uuid.UUID:
    """Deletes the space with its runtimes, runs, events, files and artifacts (their bytes too);
    refused while a browser runs in it."""
    async with ctx.db.transaction() as s:
        # Row lock: a runtime launch in this space takes the same lock, so neither slips past the other.
        await s.execute(select(Space.id).where(Space.id == space.id).with_for_update())
        live = (
            await s.execute(
                select(func.count())
                .select_from(Runtime)
                .where(Runtime.space_id == space.id, Runtime.status.in_(RuntimeStatus.LIVE))
            )
        ).scalar_one()
        if live:
            raise Conflict(
                "Stop the space's runtimes before deleting it",
                code="runtime.not_stopped",
                details={"spaceId": str(space.id), "liveRuntimes": live},
            )
        keys = [
            *(await s.execute(select(StorageFile.object_key).where(StorageFile.space_id == space.id))).scalars(),
            *(await s.execute(select(Artifact.object_key).where(Artifact.space_id == space.id))).scalars(),
        ]
        await s.execute(delete(Space).where(Space.id == space.id))
    # Bytes go after the rows: a crash in between leaves unreferenced bytes, never a row without bytes.
    store = make_store(ctx.settings)
    for key in keys:
        await store.delete(key)
    return space.id

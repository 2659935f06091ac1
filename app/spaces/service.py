"""Spaces: the task and permission boundary that runtimes, files and credentials live in."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.accounts.models import Account
from app.accounts.service import Principal
from app.ai.models import AiConnection
from app.artifacts.models import Artifact
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.files.models import StorageFile
from app.runtimes.models import Runtime, RuntimeStatus, saved_state_key
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


def space_name_conflict(name: str) -> Conflict:
    return Conflict("A space with this name already exists", code="space.name_conflict", details={"name": name})


async def _name_taken(s, account_id: uuid.UUID, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(func.count()).select_from(Space).where(Space.account_id == account_id, Space.name == name)
    if but is not None:
        stmt = stmt.where(Space.id != but)
    return bool((await s.execute(stmt)).scalar_one())


async def _lock_names(s, account_id: uuid.UUID) -> None:
    """Space names are checked under the account row's lock (PostgreSQL; SQLite has one writer)."""
    await s.execute(select(Account.id).where(Account.id == account_id).with_for_update())


async def create_named(
    ctx: AppContext, p: Principal, *, name: str | None, mounts: dict[str, Any], region: str | None = None
) -> Space:
    """A space whose name is unique among the account's spaces (409 `space.name_conflict`); without a
    name it is called `space-<last 8 hex of its id>`."""
    now = clock.now()
    space_id = ids.new_id()
    space = Space(
        id=space_id,
        account_id=p.account_id,
        name=name or f"space-{space_id.hex[-8:]}",
        region=region or DEFAULT_REGION,
        metadata_=None,
        mounts=mounts,
        is_default=False,
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        await _lock_names(s, p.account_id)
        if await _name_taken(s, p.account_id, space.name):
            raise space_name_conflict(space.name)
        s.add(space)
    return space


async def change(
    ctx: AppContext, space: Space, *, name: str | None = None, mounts: dict[str, Any] | None = None
) -> Space:
    """Rename (unique among the account's spaces) and/or replace the mounts; None leaves a field as it is."""
    async with ctx.db.transaction() as s:
        if name is not None and name != space.name:
            await _lock_names(s, space.account_id)
            if await _name_taken(s, space.account_id, name, but=space.id):
                raise space_name_conflict(name)
        row = (await s.execute(select(Space).where(Space.id == space.id).with_for_update())).scalar_one_or_none()
        if row is None:  # deleted since the path object was read
            raise space_not_found(space.id)
        space = row
        if name is not None:
            space.name = name
        if mounts is not None:
            space.mounts = mounts
        space.updated_at = clock.now()
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


async def list_spaces(
    ctx: AppContext, p: Principal, page: PageParams, *, newest_first: bool = False
) -> tuple[list[Space], str | None]:
    stmt = select(Space).where(Space.account_id == p.account_id)
    return await fetch_by_id(ctx.db, stmt, Space.id, page, newest_first=newest_first)


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
    """Deletes the space with its runtimes, runs, events, files and artifacts (their bytes too, and the
    archives of the runtimes' saved states); refused while a browser runs in it."""
    for attempt in range(3):
        try:
            keys = await _delete_rows(ctx, space)
            break
        except DBAPIError as error:
            # The cascade can meet a writer of the space's rows (events of a run just stopped) in the other
            # order: PostgreSQL aborts one of the two, and the cascade is tried again (seen in CI).
            if "deadlock detected" not in str(error) or attempt == 2:
                raise
    # Bytes go after the rows: a crash in between leaves unreferenced bytes, never a row without bytes.
    store = make_store(ctx.settings)
    for key in keys:
        await store.delete(key)
    return space.id


async def _delete_rows(ctx: AppContext, space: Space) -> list[str]:
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
            # The archives of the runtimes' saved states (app/runtimes/state.py keeps the key in the row).
            *(
                key
                for saved in (
                    await s.execute(select(Runtime.saved_state).where(Runtime.space_id == space.id))
                ).scalars()
                if (key := saved_state_key(saved))
            ),
        ]
        await s.execute(delete(Space).where(Space.id == space.id))
    return keys


async def check_ai_connections(ctx: AppContext, account_id: uuid.UUID, wanted: list[str]) -> list[str]:
    """The ids as stored (canonical UUID text), each an AI connection of the account; 404 otherwise."""
    parsed = {raw: ids.parse_uuid(raw) for raw in wanted}
    known: set[uuid.UUID] = set()
    if any(parsed.values()):
        async with ctx.db.read() as s:
            stmt = select(AiConnection.id).where(
                AiConnection.account_id == account_id, AiConnection.id.in_([u for u in parsed.values() if u])
            )
            known = set((await s.execute(stmt)).scalars())
    for raw, value in parsed.items():
        if value not in known:
            raise NotFound("AI credential not found", code="ai_credential.not_found", details={"credentialId": raw})
    return list(dict.fromkeys(str(parsed[raw]) for raw in wanted))

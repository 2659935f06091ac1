"""Artifacts: what a run produced (downloads, screenshots, collected files, exports), bytes in the object store.

`record` is the entry point for the machinery that produces artifacts (the CDP observer for downloads,
runtime file collection, run exports); the routes only read.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.artifacts.models import Artifact, ArtifactKind
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.runs import events
from app.runs.models import Run
from app.runs.service import run_not_found
from app.spaces.models import Space
from app.storage import StoredObject, make_store, new_key
from app.storage.http import Download

EVENT_TYPE = "artifact.created"
EVENT_CATEGORY = "artifact"
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def artifact_not_found(artifact_id: object) -> NotFound:
    return NotFound("Artifact not found", code="artifact.not_found", details={"artifactId": str(artifact_id)})


def _clean_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return (cleaned or "artifact")[:255]


async def record(
    ctx: AppContext,
    *,
    run_id: uuid.UUID,
    kind: str,
    name: str,
    content_type: str,
    source: pathlib.Path,
    path: str | None = None,
    metadata: dict | None = None,
) -> Artifact:
    """Copy the local file `source` into the object store and record it as an artifact of the run.

    The row and its `artifact.created` event are written in one transaction; if that fails, the
    stored copy is removed again. `source` is left where it is: the caller owns it.
    """
    if kind not in ArtifactKind.ALL:
        raise InvalidRequest(f"Unknown artifact kind {kind!r}", details={"kind": kind})
    async with ctx.db.read() as s:
        run = await s.get(Run, run_id)
    if run is None:
        raise run_not_found(run_id)
    store = make_store(ctx.settings)
    # Recordings under their own prefix: the bulk of the store, easy to size and expire on their own.
    stored = await store.put_file(new_key("recordings" if kind == ArtifactKind.RECORDING else "artifacts"), source)
    try:
        async with ctx.db.transaction() as s:
            return await insert(
                s, run, stored, kind=kind, name=name, content_type=content_type, path=path, metadata=metadata
            )
    except BaseException:
        await store.delete(stored.key)
        raise


async def insert(
    session: AsyncSession,
    run: Run,
    stored: StoredObject,
    *,
    kind: str,
    name: str,
    content_type: str | None,
    path: str | None = None,
    metadata: dict[str, Any] | None = None,
    file_id: uuid.UUID | None = None,
) -> Artifact:
    """Add the artifact row and its event in the caller's transaction (bytes already stored)."""
    artifact = Artifact(
        id=ids.new_id(),
        account_id=run.account_id,
        space_id=run.space_id,
        run_id=run.id,
        runtime_id=run.runtime_id,
        kind=kind,
        name=_clean_name(name),
        content_type=(content_type or DEFAULT_CONTENT_TYPE)[:255],
        size_bytes=stored.size,
        sha256=stored.sha256,
        object_key=stored.key,
        file_id=file_id,
        path=path[:4096] if path else None,
        metadata_=metadata,
        created_at=clock.now(),
    )
    session.add(artifact)
    await events.append(
        session,
        run.id,
        EVENT_TYPE,
        EVENT_CATEGORY,
        {
            "artifactId": str(artifact.id),
            "kind": artifact.kind,
            "name": artifact.name,
            "contentType": artifact.content_type,
            "sizeBytes": artifact.size_bytes,
            "fileId": str(file_id) if file_id else None,
            "path": artifact.path,
        },
    )
    return artifact


async def list_for_run(
    ctx: AppContext, run: Run, page: PageParams, *, kinds: list[str] | None = None
) -> tuple[list[Artifact], str | None]:
    stmt = select(Artifact).where(Artifact.run_id == run.id)
    if kinds:
        stmt = stmt.where(Artifact.kind.in_(kinds))
    return await fetch_by_id(ctx.db, stmt, Artifact.id, page, newest_first=True)


async def list_for_space(
    ctx: AppContext, space: Space, page: PageParams, *, runtime_id: str | None = None, kinds: list[str] | None = None
) -> tuple[list[Artifact], str | None]:
    stmt = select(Artifact).where(Artifact.space_id == space.id, Artifact.account_id == space.account_id)
    if runtime_id is not None:
        rid = ids.parse_uuid(runtime_id)
        if rid is None:  # an id that is not a UUID matches nothing
            return [], None
        stmt = stmt.where(Artifact.runtime_id == rid)
    if kinds:
        stmt = stmt.where(Artifact.kind.in_(kinds))
    return await fetch_by_id(ctx.db, stmt, Artifact.id, page, newest_first=True)


async def get(ctx: AppContext, run: Run, artifact_id: str) -> Artifact:
    artifact = await get_owned(ctx.db, Artifact, artifact_id, run.account_id)
    if artifact is None or artifact.run_id != run.id:
        raise artifact_not_found(artifact_id)
    return artifact


async def content(ctx: AppContext, run: Run, artifact_id: str) -> Download:
    artifact = await get(ctx, run, artifact_id)
    return Download(
        key=artifact.object_key, filename=artifact.name, content_type=artifact.content_type, sha256=artifact.sha256
    )


async def of_run(ctx: AppContext, run: Run, kinds: list[str] | None = None) -> list[Artifact]:
    """Every artifact of a run, oldest first (for exports)."""
    stmt = select(Artifact).where(Artifact.run_id == run.id)
    if kinds:
        stmt = stmt.where(Artifact.kind.in_(kinds))
    async with ctx.db.read() as s:
        return list((await s.execute(stmt.order_by(Artifact.id))).scalars())

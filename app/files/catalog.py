"""Every file of an account as one catalogue: the files in space storage, and the files its runs
recorded straight from the browser (downloads, the recording, screenshots) that were never saved to
storage. Artifacts that were saved to storage (collected with `artifact`, exports) appear once, as
their storage file.

A recorded file has no storage path of its own; it is listed at `runs/<run id>/<kind>/<name>`, and
the path filters (`path`, `prefix`) understand that spelling. Its id is the artifact's id (ids are
UUIDv7 in both tables, so one order covers both).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, literal, select, true, union_all
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import Principal
from app.artifacts.models import Artifact, ArtifactKind
from app.core import ids
from app.core.context import AppContext
from app.core.errors import DomainError, InvalidRequest
from app.core.paging import PageParams, split_page
from app.files import service as files
from app.files.models import StorageFile
from app.files.schemas import FileUpdate
from app.storage.http import Download

RECORDED_ROOT = "runs"
# What a stored file's `source` says about where it came from, as a kind (uploads have none).
_STORED_KIND = {files.Source.RUNTIME: ArtifactKind.COLLECTED, files.Source.EXPORT: ArtifactKind.EXPORT}
_UUID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_HEX = re.compile(r"^[0-9a-f]*$")


def recorded(artifact_table=Artifact) -> ColumnElement[bool]:
    """Artifacts whose bytes came from the browser itself: recorded without a storage path (the
    collect and export paths always name one, and keep a storage file beside the artifact)."""
    return artifact_table.path.is_(None)


@dataclass(frozen=True)
class Entry:
    """One file of the catalogue: a storage file or a recorded artifact."""

    stored: StorageFile | None = None
    artifact: Artifact | None = None

    @property
    def row(self) -> StorageFile | Artifact:
        return self.stored if self.stored is not None else self.artifact

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def produced(self) -> bool:
        """Made by a run (collected, exported or recorded), not uploaded."""
        return self.stored is None or self.stored.source != files.Source.UPLOAD

    @property
    def kind(self) -> str | None:
        if self.artifact is not None:
            return self.artifact.kind
        return _STORED_KIND.get(self.stored.source)

    @property
    def path(self) -> str:
        if self.stored is not None:
            return self.stored.path
        a = self.artifact
        return f"{RECORDED_ROOT}/{a.run_id}/{a.kind}/{a.name.replace('/', '_')}"

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def run_id(self) -> uuid.UUID | None:
        return self.row.run_id

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self.row.metadata_

    @property
    def updated_at(self) -> datetime:
        return self.stored.updated_at if self.stored is not None else self.artifact.created_at

    @property
    def expires_at(self) -> datetime | None:
        return self.stored.expires_at if self.stored is not None else None

    @property
    def deletable(self) -> bool:
        # The run's recording points at its artifact; it goes with the run (DELETE /v1/runs/{id}).
        return self.artifact is None or self.artifact.kind != ArtifactKind.RECORDING


def not_deletable(entry: Entry) -> DomainError:
    return DomainError(
        "This file is the run's recording; it is deleted with the run",
        code="file.not_deletable",
        status=403,
        details={"fileId": str(entry.id), "runId": str(entry.run_id)},
    )


@dataclass(frozen=True)
class Filters:
    space_id: uuid.UUID | None = None
    produced: bool | None = None  # True: made by runs; False: uploads
    path: str | None = None
    prefix: str | None = None
    q: str | None = None
    run_id: uuid.UUID | None = None
    runtime_id: uuid.UUID | None = None
    kinds: list[str] | None = None
    created_after: datetime | None = None


# --- the recorded files' paths, as conditions -----------------------------------------------------


def _run_id_prefix(part: str) -> ColumnElement[bool]:
    """Artifacts whose run id, spelled canonically, starts with `part`."""
    if len(part) > len(_UUID_SHAPE):
        return false()
    for ch, shape in zip(part, _UUID_SHAPE, strict=False):
        if (shape == "-") != (ch == "-") or (ch != "-" and not _HEX.match(ch)):
            return false()
    digits = part.replace("-", "")
    low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
    return Artifact.run_id.between(low, high)


def _recorded_prefix(prefix: str) -> ColumnElement[bool]:
    head = f"{RECORDED_ROOT}/"
    if len(prefix) <= len(head):
        return true() if head.startswith(prefix) else false()
    if not prefix.startswith(head):
        return false()
    run_part, sep, rest = prefix[len(head) :].partition("/")
    if not sep:
        return _run_id_prefix(run_part)
    run_id = ids.parse_uuid(run_part)
    if run_id is None or str(run_id) != run_part:
        return false()
    kind_part, sep, name_part = rest.partition("/")
    if not sep:
        kinds = [k for k in ArtifactKind.ALL if k.startswith(kind_part)]
        return (Artifact.run_id == run_id) & Artifact.kind.in_(kinds) if kinds else false()
    if "/" in name_part:
        return false()
    return (
        (Artifact.run_id == run_id)
        & (Artifact.kind == kind_part)
        & Artifact.name.startswith(name_part, autoescape=True)
    )


def _recorded_path(path: str) -> ColumnElement[bool]:
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != RECORDED_ROOT:
        return false()
    run_id = ids.parse_uuid(parts[1])
    if run_id is None or str(run_id) != parts[1]:
        return false()
    return (Artifact.run_id == run_id) & (Artifact.kind == parts[2]) & (Artifact.name == parts[3])


def _contains(column, text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


# --- queries ------------------------------------------------------------------------------------


def stored_ids(account_id: uuid.UUID, f: Filters):
    stmt = select(StorageFile.id.label("id"), literal("stored").label("tag")).where(
        StorageFile.account_id == account_id
    )
    if f.space_id is not None:
        stmt = stmt.where(StorageFile.space_id == f.space_id)
    if f.produced is not None:
        stmt = stmt.where((StorageFile.source != files.Source.UPLOAD) == f.produced)
    if f.path is not None:
        stmt = stmt.where(StorageFile.path == f.path)
    if f.prefix:
        stmt = stmt.where(StorageFile.path.startswith(f.prefix, autoescape=True))
    if f.q:
        stmt = stmt.where(_contains(StorageFile.name, f.q) | _contains(StorageFile.path, f.q))
    if f.run_id is not None:
        stmt = stmt.where(StorageFile.run_id == f.run_id)
    if f.runtime_id is not None:
        stmt = stmt.where(StorageFile.runtime_id == f.runtime_id)
    if f.kinds is not None:
        sources = [source for source, kind in _STORED_KIND.items() if kind in f.kinds]
        stmt = stmt.where(StorageFile.source.in_(sources)) if sources else stmt.where(false())
    if f.created_after is not None:
        stmt = stmt.where(StorageFile.created_at > f.created_after)
    return stmt


def recorded_ids(account_id: uuid.UUID, f: Filters):
    stmt = select(Artifact.id.label("id"), literal("recorded").label("tag")).where(
        Artifact.account_id == account_id, recorded()
    )
    if f.produced is False:
        stmt = stmt.where(false())
    if f.space_id is not None:
        stmt = stmt.where(Artifact.space_id == f.space_id)
    if f.path is not None:
        stmt = stmt.where(_recorded_path(f.path))
    if f.prefix:
        stmt = stmt.where(_recorded_prefix(f.prefix))
    if f.q:
        stmt = stmt.where(_contains(Artifact.name, f.q))
    if f.run_id is not None:
        stmt = stmt.where(Artifact.run_id == f.run_id)
    if f.runtime_id is not None:
        stmt = stmt.where(Artifact.runtime_id == f.runtime_id)
    if f.kinds is not None:
        stmt = stmt.where(Artifact.kind.in_(f.kinds))
    if f.created_after is not None:
        stmt = stmt.where(Artifact.created_at > f.created_after)
    return stmt


async def page_of(
    ctx: AppContext, parts: list, page: PageParams, *, newest_first: bool
) -> tuple[list[tuple[uuid.UUID, str]], str | None]:
    """One page of (id, tag) over the union of `parts` (selects of `id` and `tag`), by id."""
    both = union_all(*parts).subquery()
    stmt = select(both.c.id, both.c.tag)
    after = ids.parse_uuid(page.after) if isinstance(page.after, str) else None
    if after is not None:
        stmt = stmt.where(both.c.id < after if newest_first else both.c.id > after)
    stmt = stmt.order_by(both.c.id.desc() if newest_first else both.c.id).limit(page.limit + 1)
    async with ctx.db.read() as s:
        found = [(row.id, row.tag) for row in await s.execute(stmt)]
    return split_page(found, page, lambda pair: str(pair[0]))


async def load(s: AsyncSession, found: list[tuple[uuid.UUID, str]]) -> dict[uuid.UUID, Any]:
    """The rows of (id, tag) pairs, by id."""
    rows: dict[uuid.UUID, Any] = {}
    for tag, model in (("stored", StorageFile), ("recorded", Artifact)):
        wanted = [i for i, t in found if t == tag]
        if wanted:
            rows.update({row.id: row for row in (await s.execute(select(model).where(model.id.in_(wanted)))).scalars()})
    return rows


def entry_of(row: StorageFile | Artifact) -> Entry:
    return Entry(stored=row) if isinstance(row, StorageFile) else Entry(artifact=row)


async def list_entries(
    ctx: AppContext, account_id: uuid.UUID, f: Filters, page: PageParams, *, newest_first: bool = True
) -> tuple[list[Entry], str | None]:
    found, cursor = await page_of(
        ctx, [stored_ids(account_id, f), recorded_ids(account_id, f)], page, newest_first=newest_first
    )
    async with ctx.db.read() as s:
        rows = await load(s, found)
    return [entry_of(rows[i]) for i, _ in found if i in rows], cursor


@dataclass(frozen=True)
class Folder:
    path: str
    segment: str
    file_count: int
    total_bytes: int
    last_created_at: datetime | None


async def folders(ctx: AppContext, account_id: uuid.UUID, f: Filters) -> list[Folder]:
    """The folders directly under `f.prefix` (a folder when it ends with `/`, else its parent), with
    how many files each holds (at any depth), their bytes and the newest file's time."""
    prefix = f.prefix or ""
    base = prefix[: prefix.rfind("/") + 1]
    async with ctx.db.read() as s:
        stored = await s.execute(
            select(StorageFile.path, StorageFile.size_bytes, StorageFile.created_at).where(
                StorageFile.id.in_(stored_ids(account_id, f).with_only_columns(StorageFile.id).scalar_subquery())
            )
        )
        items = [(path, size, created) for path, size, created in stored]
        arts = await s.execute(
            select(Artifact.run_id, Artifact.kind, Artifact.name, Artifact.size_bytes, Artifact.created_at).where(
                Artifact.id.in_(recorded_ids(account_id, f).with_only_columns(Artifact.id).scalar_subquery())
            )
        )
        items += [
            (f"{RECORDED_ROOT}/{run_id}/{kind}/{name.replace('/', '_')}", size, created)
            for run_id, kind, name, size, created in arts
        ]
    grouped: dict[str, list[tuple[int, datetime]]] = {}
    for path, size, created in items:
        if not path.startswith(base):
            continue
        segment, sep, _ = path[len(base) :].partition("/")
        if sep:
            grouped.setdefault(segment, []).append((size, created))
    return [
        Folder(
            path=f"{base}{segment}/",
            segment=segment,
            file_count=len(members),
            total_bytes=sum(size for size, _ in members),
            last_created_at=max(created for _, created in members),
        )
        for segment, members in sorted(grouped.items())
    ]


# --- one file -------------------------------------------------------------------------------------


async def get(ctx: AppContext, p: Principal, file_id: str) -> Entry:
    """The storage file or recorded artifact with this id; 404 `file.not_found` otherwise."""
    wanted = ids.parse_uuid(file_id)
    if wanted is None:
        raise files.file_not_found(file_id)
    async with ctx.db.read() as s:
        stored = await s.get(StorageFile, wanted)
        if stored is not None and stored.account_id == p.account_id:
            return Entry(stored=stored)
        artifact = await s.get(Artifact, wanted)
    if artifact is not None and artifact.account_id == p.account_id and artifact.path is None:
        return Entry(artifact=artifact)
    raise files.file_not_found(file_id)


async def update(
    ctx: AppContext, entry: Entry, *, name: str | None, metadata: dict[str, Any] | None, changes: set[str]
) -> Entry:
    """Rename (`name`) and replace caller metadata (`metadata`, when in `changes`). A recorded file's
    metadata is the run's record of where it came from: only its name changes."""
    if entry.stored is not None:
        body = FileUpdate.model_validate({k: v for k, v in (("name", name), ("metadata", metadata)) if k in changes})
        return Entry(stored=await files.update_file(ctx, entry.stored, body))
    if "metadata" in changes:
        raise InvalidRequest(
            "A file a run recorded keeps the run's metadata; only its filename can change",
            details={"fields": [{"field": "metadata", "in": "body", "message": "read-only", "type": "read_only"}]},
        )
    if "name" not in changes or name is None:
        return entry
    new_name = files.check_name(name, entry.artifact.name)
    async with ctx.db.transaction() as s:
        await s.execute(sql_update(Artifact).where(Artifact.id == entry.artifact.id).values(name=new_name))
        artifact = await s.get(Artifact, entry.artifact.id, populate_existing=True)
    return Entry(artifact=artifact)


async def delete(ctx: AppContext, entry: Entry) -> uuid.UUID:
    """Delete the file and its bytes. A recorded file is its artifact: it leaves the run's artifacts
    too. The run's recording is 403 `file.not_deletable` (it goes with the run)."""
    if entry.stored is not None:
        return await files.delete_file(ctx, entry.stored)
    if not entry.deletable:
        raise not_deletable(entry)
    async with ctx.db.transaction() as s:
        row = await s.get(Artifact, entry.artifact.id)
        if row is not None:
            await s.delete(row)
    await files.discard(ctx, [entry.artifact.object_key])
    return entry.artifact.id


def content(entry: Entry) -> Download:
    row = entry.row
    return Download(key=row.object_key, filename=row.name, content_type=row.content_type, sha256=row.sha256)

"""Space storage files: uploads, reads, renames, deletes, run files and run exports.

Bytes live in the object store under server-generated keys; a row points at them. Every write puts
the bytes first (atomically, invisible until complete) and inserts the row after; when the row
cannot be written the bytes are removed again, so a failure leaves neither behind.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import Principal
from app.artifacts import service as artifacts
from app.artifacts.models import Artifact, ArtifactKind
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.core.schemas import storable_problem
from app.files import multipart
from app.files.models import StorageFile
from app.files.paths import basename, check_relative
from app.files.schemas import ExportRequest, FileUpdate
from app.runs.models import Run
from app.spaces import service as spaces
from app.spaces.models import Space
from app.storage import StoredObject, make_store, new_key
from app.storage.http import Download

log = structlog.get_logger(__name__)

PATH_INVALID = "storage_file.path_invalid"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;\s*[\w.+-]+=[\w.+\"-]+)*$")
_NAME_MAX = 255


class Source:
    UPLOAD = "upload"
    RUNTIME = "runtime"
    EXPORT = "export"


@dataclass(frozen=True)
class UploadBody:
    """A multipart request body as it arrives: the router hands it over unread."""

    content_type: str | None
    content_length: str | None
    stream: AsyncIterator[bytes]


def file_not_found(file_id: object) -> NotFound:
    return NotFound("File not found", code="file.not_found", details={"fileId": str(file_id)})


def path_exists(space_id: uuid.UUID, path: str) -> Conflict:
    return Conflict(
        "A file already exists at this path",
        code="storage_file.path_exists",
        details={"spaceId": str(space_id), "path": path},
    )


def check_path(raw: object, field: str = "path") -> str:
    return check_relative(raw, field=field, code=PATH_INVALID)


def check_name(raw: str | None, fallback: str) -> str:
    name = (raw if raw is not None else fallback).strip()
    if not name or len(name) > _NAME_MAX or any(ch < " " or ch == "\x7f" for ch in name):
        raise InvalidRequest(
            f"name must be 1 to {_NAME_MAX} printable characters",
            details={"fields": [{"field": "name", "in": "body", "message": "invalid name", "type": "string"}]},
        )
    return name


def content_type_for(declared: str | None, *names: str) -> str:
    """The declared type when it is a plain media type, else a guess from the first name that tells."""
    if declared and len(declared) <= 255 and _CONTENT_TYPE.match(declared) and declared.lower() != DEFAULT_CONTENT_TYPE:
        return declared
    for name in names:
        guessed, _ = mimetypes.guess_type(name, strict=False)
        if guessed:
            return guessed
    return DEFAULT_CONTENT_TYPE


def parse_metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None or raw.strip() in ("", "null"):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(
            "metadata must be a JSON object",
            details={
                "fields": [
                    {"field": "metadata", "in": "body", "message": "expected a JSON object string", "type": "json"}
                ]
            },
        )
    if found := storable_problem(value, "metadata"):  # the rule JSON bodies follow (app/core/schemas.py)
        raise InvalidRequest(
            f"Invalid request: {found[0]}: {found[1]}",
            details={"fields": [{"field": found[0], "in": "body", "message": found[1], "type": "value_error"}]},
        )
    return value


def new_row(
    space: Space,
    stored: StoredObject,
    *,
    path: str,
    name: str,
    content_type: str,
    metadata: dict[str, Any] | None,
    source: str,
    run_id: uuid.UUID | None = None,
    runtime_id: uuid.UUID | None = None,
) -> StorageFile:
    now = clock.now()
    return StorageFile(
        id=ids.new_id(),
        account_id=space.account_id,
        space_id=space.id,
        path=path,
        name=name,
        content_type=content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        object_key=stored.key,
        source=source,
        run_id=run_id,
        runtime_id=runtime_id,
        metadata_=metadata,
        created_at=now,
        updated_at=now,
        expires_at=None,
    )


async def path_taken(ctx: AppContext, space_id: uuid.UUID, path: str) -> bool:
    async with ctx.db.read() as s:
        found = await s.execute(
            select(StorageFile.id).where(StorageFile.space_id == space_id, StorageFile.path == path)
        )
    return found.first() is not None


async def ensure_free(ctx: AppContext, space_id: uuid.UUID, path: str) -> None:
    if await path_taken(ctx, space_id, path):
        raise path_exists(space_id, path)


async def discard(ctx: AppContext, keys: list[str]) -> None:
    store = make_store(ctx.settings)
    for key in keys:
        try:
            await store.delete(key)
        except Exception:
            log.exception("object_delete_failed", key=key)


async def commit(
    ctx: AppContext, row: StorageFile, keys: list[str], also: Callable[[AsyncSession], Awaitable[Any]] | None = None
) -> StorageFile:
    """Insert `row` (and whatever `also` adds) in one transaction; on failure remove `keys` from the store."""
    try:
        async with ctx.db.transaction() as s:
            s.add(row)
            await s.flush()
            if also is not None:
                await also(s)
    except IntegrityError:
        await discard(ctx, keys)
        if await path_taken(ctx, row.space_id, row.path):
            raise path_exists(row.space_id, row.path) from None
        raise spaces.space_not_found(row.space_id) from None
    except BaseException:
        await discard(ctx, keys)
        raise
    return row


# --- uploads ------------------------------------------------------------------------------------

UPLOAD_FIELDS = frozenset({"path", "name", "metadata"})


async def receive(ctx: AppContext, body: UploadBody, allowed: frozenset[str]) -> multipart.Received:
    """Stream the multipart body's `file` into the store; refuse unknown text fields afterwards."""
    store = make_store(ctx.settings)
    received = await multipart.receive(
        store,
        new_key("files"),
        content_type=body.content_type,
        content_length=body.content_length,
        body=body.stream,
        max_file_bytes=ctx.settings.max_upload_bytes,
    )
    unknown = sorted(set(received.fields) - allowed)
    if unknown:
        await discard(ctx, [received.stored.key])
        raise InvalidRequest(
            f"Unknown form fields: {', '.join(unknown)}",
            details={
                "fields": [
                    {"field": f, "in": "body", "message": "unknown field", "type": "extra_forbidden"} for f in unknown
                ]
            },
        )
    return received


async def store_received(
    ctx: AppContext,
    space: Space,
    received: multipart.Received,
    *,
    path: str | None,
    name: str | None,
    metadata: str | None,
    source: str = Source.UPLOAD,
    run_id: uuid.UUID | None = None,
    runtime_id: uuid.UUID | None = None,
    path_field: str = "path",
) -> StorageFile:
    """Validate the upload's fields and insert its row; invalid fields remove the stored bytes."""
    stored = received.stored
    try:
        filename = basename((received.filename or "").replace("\\", "/"))
        if path is None:
            if filename in ("", ".", ".."):
                raise InvalidRequest(
                    f"{path_field} is required when the file part has no file name",
                    details={"fields": [{"field": path_field, "in": "body", "message": "missing", "type": "missing"}]},
                )
            path = filename
        path = check_path(path, path_field)
        final_name = check_name(name, basename(path))
        row = new_row(
            space,
            stored,
            path=path,
            name=final_name,
            content_type=content_type_for(received.content_type, basename(path), final_name),
            metadata=parse_metadata(metadata),
            source=source,
            run_id=run_id,
            runtime_id=runtime_id,
        )
    except BaseException:
        await discard(ctx, [stored.key])
        raise
    return await commit(ctx, row, [stored.key])


SpaceOfForm = Callable[[dict[str, Any]], Awaitable[Space]]


async def upload(
    ctx: AppContext,
    body: UploadBody,
    *,
    space: Space | SpaceOfForm,
    fields: frozenset[str] = UPLOAD_FIELDS,
    name_field: str = "name",
) -> StorageFile:
    """Into `space`, or the space a function of the form's fields gives (a route whose form may name
    one). `fields` are the form fields the route accepts besides `file`; `name_field` is the one that
    carries the display name."""
    received = await receive(ctx, body, fields)
    form = received.fields
    if not isinstance(space, Space):
        try:
            space = await space(form)
        except BaseException:
            await discard(ctx, [received.stored.key])
            raise
    return await store_received(
        ctx, space, received, path=form.get("path"), name=form.get(name_field), metadata=form.get("metadata")
    )


# --- reads and changes --------------------------------------------------------------------------


async def get(ctx: AppContext, p: Principal, file_id: str) -> StorageFile:
    row = await get_owned(ctx.db, StorageFile, file_id, p.account_id)
    if row is None:
        raise file_not_found(file_id)
    return row


async def list_files(
    ctx: AppContext, space: Space, page: PageParams, *, prefix: str | None = None
) -> tuple[list[StorageFile], str | None]:
    stmt = select(StorageFile).where(StorageFile.space_id == space.id)
    if prefix:
        stmt = stmt.where(StorageFile.path.startswith(prefix, autoescape=True))
    return await _page(ctx, stmt, page)


async def _page(ctx: AppContext, stmt, page: PageParams) -> tuple[list[StorageFile], str | None]:
    return await fetch_by_id(ctx.db, stmt, StorageFile.id, page)


async def update_file(ctx: AppContext, row: StorageFile, body: FileUpdate) -> StorageFile:
    changes = body.model_fields_set  # field names (a dump would give the camelCase aliases)
    async with ctx.db.transaction() as s:
        row = await s.merge(row)
        if "name" in changes and body.name is not None:
            row.name = check_name(body.name, row.name)
        if "metadata" in changes:
            row.metadata_ = body.metadata
        row.updated_at = clock.now()
    return row


async def delete_file(ctx: AppContext, row: StorageFile) -> uuid.UUID:
    """Remove the row, then the bytes. Artifacts keep their own copy; their `fileId` is cleared."""
    async with ctx.db.transaction() as s:
        await s.execute(update(Artifact).where(Artifact.file_id == row.id).values(file_id=None))
        await s.delete(await s.merge(row))
    await discard(ctx, [row.object_key])
    return row.id


def content(row: StorageFile) -> Download:
    return Download(key=row.object_key, filename=row.name, content_type=row.content_type, sha256=row.sha256)


# --- run files and exports ----------------------------------------------------------------------


async def list_run_files(ctx: AppContext, run: Run, page: PageParams) -> tuple[list[StorageFile], str | None]:
    """Storage files a run produced (collected from its runtime, or exported from it)."""
    stmt = select(StorageFile).where(StorageFile.run_id == run.id, StorageFile.account_id == run.account_id)
    return await _page(ctx, stmt, page)


def _entry_name(artifact: Artifact, taken: set[str]) -> str:
    name = artifact.name.replace("/", "_").replace("\\", "_")
    if name in ("", ".", ".."):
        name = f"artifact-{artifact.id}"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    entry, n = f"{artifact.kind}/{name}", 2
    while entry in taken:
        entry = f"{artifact.kind}/{stem} ({n}){'.' + ext if ext else ''}"
        n += 1
    taken.add(entry)
    return entry


async def _build_zip(ctx: AppContext, target: Path, items: list[Artifact]) -> None:
    """A ZIP of the artifacts (entries `<kind>/<name>`) plus `manifest.json` mapping entries to artifacts."""
    store = make_store(ctx.settings)
    zf = await asyncio.to_thread(zipfile.ZipFile, target, "w", zipfile.ZIP_DEFLATED)
    try:
        taken: set[str] = set()
        manifest = []
        for artifact in items:
            entry = _entry_name(artifact, taken)
            info = zipfile.ZipInfo(entry, date_time=artifact.created_at.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            writer = await asyncio.to_thread(zf.open, info, "w", force_zip64=True)
            try:
                async for chunk in store.open(artifact.object_key):
                    await asyncio.to_thread(writer.write, chunk)
            finally:
                await asyncio.to_thread(writer.close)
            manifest.append(
                {
                    "entry": entry,
                    "artifactId": str(artifact.id),
                    "kind": artifact.kind,
                    "name": artifact.name,
                    "contentType": artifact.content_type,
                    "sizeBytes": artifact.size_bytes,
                    "sha256": artifact.sha256,
                    "createdAt": clock.iso(artifact.created_at),
                }
            )
        await asyncio.to_thread(
            zf.writestr, "manifest.json", orjson.dumps({"artifacts": manifest}, option=orjson.OPT_INDENT_2)
        )
    finally:
        await asyncio.to_thread(zf.close)


async def export_run(ctx: AppContext, run: Run, body: ExportRequest) -> StorageFile:
    """ZIP the run's artifacts into space storage (`exports/<run>/<name>`), also recorded as an `export` artifact."""
    kinds = body.kind or [k for k in ArtifactKind.ALL if k != ArtifactKind.EXPORT]
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    name = body.name or f"run-{run.id}-{stamp}.zip"
    path = check_path(f"exports/{run.id}/{name}")
    async with ctx.db.read() as s:
        space = await s.get(Space, run.space_id)
    await ensure_free(ctx, space.id, path)
    items = await artifacts.of_run(ctx, run, kinds)
    tmp_dir = ctx.settings.data_dir / "tmp"
    await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
    target = tmp_dir / f"export-{uuid.uuid4().hex}.zip"
    store = make_store(ctx.settings)
    keys: list[str] = []
    try:
        await _build_zip(ctx, target, items)
        stored_file = await store.put_file(new_key("files"), target)
        keys.append(stored_file.key)
        stored_artifact = await store.put_file(new_key("artifacts"), target)
        keys.append(stored_artifact.key)
    except BaseException:
        await discard(ctx, keys)
        raise
    finally:
        await asyncio.to_thread(target.unlink, missing_ok=True)
    row = new_row(
        space,
        stored_file,
        path=path,
        name=name,
        content_type="application/zip",
        metadata={"artifactCount": len(items), "kinds": kinds},
        source=Source.EXPORT,
        run_id=run.id,
        runtime_id=run.runtime_id,
    )

    async def add_artifact(s: AsyncSession) -> None:
        await artifacts.insert(
            s,
            run,
            stored_artifact,
            kind=ArtifactKind.EXPORT,
            name=name,
            content_type="application/zip",
            path=path,
            file_id=row.id,
            metadata={"artifactCount": len(items)},
        )

    return await commit(ctx, row, keys, add_artifact)

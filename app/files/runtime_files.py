"""Runtime files: a directory per runtime that its browser can read from and write to.

The local driver runs Chromium on this machine, so a file staged into
`<browser root>/files/<runtime id>/` is reachable by the browser at its absolute path (for example
through `DOM.setFileInputFiles`), and files the browser or a script leaves there can be collected into
space storage. Every path is relative to that directory and must stay inside it: absolute paths,
`..` segments and symbolic links that lead outside are refused with 400 `runtime_file.path_invalid`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import Principal
from app.artifacts import service as artifacts
from app.artifacts.models import Artifact
from app.core import ids
from app.core.config import Settings
from app.core.context import AppContext
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, split_page
from app.files import service as files
from app.files.models import StorageFile
from app.files.paths import basename, check_relative
from app.files.schemas import CollectRequest, StageRequest
from app.runs.models import Run
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces.models import Space
from app.storage import make_store, new_key
from app.storage.base import CHUNK_SIZE

AREA_DIR = "runtime-files"
PATH_INVALID = "runtime_file.path_invalid"
# Temporary names while a staged file is written; hidden from listings.
_STAGING_PREFIX = ".bctrl-staging-"


@dataclass
class Staged:
    id: uuid.UUID
    file: StorageFile
    runtime_id: uuid.UUID
    name: str
    path: Path
    runtime_path: str
    size_bytes: int


@dataclass
class RuntimeFile:
    name: str
    path: str
    size_bytes: int
    modified_at: datetime


NAME_MAX = 255


def area(settings: Settings, runtime_id: uuid.UUID) -> Path:
    # In the browser root (app/drivers/local.py), outside the data directory its browser cannot read.
    return (settings.resolved_browser_root / "files" / str(runtime_id)).resolve()


def path_invalid(field: str, raw: str, reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not a valid runtime path: {reason}",
        code=PATH_INVALID,
        details={"field": field, "path": raw[:200], "reason": reason},
    )


def runtime_file_not_found(path: str) -> NotFound:
    return NotFound("No such file in the runtime", code="runtime_file.not_found", details={"path": path})


def resolve(root: Path, raw: object, field: str) -> tuple[str, Path]:
    """The clean relative path and its real location inside `root`; 400 if it would leave `root`."""
    rel = check_relative(raw, field=field, code=PATH_INVALID)
    # File systems cap a name at 255 bytes (NAME_MAX); a longer segment would fail in open() as a 500.
    if any(len(segment.encode()) > NAME_MAX for segment in rel.split("/")):
        raise path_invalid(field, rel, f"a path segment is longer than {NAME_MAX} bytes")
    real = (root / rel).resolve()  # follows symbolic links, existing or not
    if real == root or not real.is_relative_to(root):
        raise path_invalid(field, rel, "leads outside the runtime's file area")
    return rel, real


def require_active(runtime: Runtime) -> None:
    if runtime.status != RuntimeStatus.ACTIVE:
        raise runtime_not_active(runtime.id, runtime.status, "Runtime is not active; start it first")


# --- stage: storage -> runtime ------------------------------------------------------------------


def _open_staging(root: Path, real: Path, field: str, rel: str):
    root.mkdir(parents=True, exist_ok=True)
    real.parent.mkdir(parents=True, exist_ok=True)
    # Directories created above could have raced with a symlink swap; check again where we write.
    if not real.parent.resolve().is_relative_to(root):
        raise path_invalid(field, rel, "leads outside the runtime's file area")
    if real.is_dir():
        raise path_invalid(field, rel, "is a directory")
    tmp = real.parent / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    return tmp, os.fdopen(fd, "wb")


async def _write_into(ctx: AppContext, root: Path, real: Path, field: str, rel: str, key: str) -> int:
    tmp, f = await asyncio.to_thread(_open_staging, root, real, field, rel)
    size = 0
    try:
        async for chunk in make_store(ctx.settings).open(key):
            size += len(chunk)
            await asyncio.to_thread(f.write, chunk)
        await asyncio.to_thread(f.close)
        await asyncio.to_thread(os.replace, tmp, real)  # rename replaces a link itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            f.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size


async def stage_file(
    ctx: AppContext,
    runtime: Runtime,
    row: StorageFile,
    *,
    runtime_path: str | None,
    name: str | None,
    field: str = "runtimePath",
) -> Staged:
    root = area(ctx.settings, runtime.id)
    raw = runtime_path if runtime_path is not None else (name if name is not None else row.name)
    if runtime_path is None:
        field = "name"
    rel, real = resolve(root, raw, field)
    size = await _write_into(ctx, root, real, field, rel, row.object_key)
    return Staged(
        id=ids.new_id(),
        file=row,
        runtime_id=runtime.id,
        name=basename(rel),
        path=real,
        runtime_path=rel,
        size_bytes=size,
    )


async def stage(ctx: AppContext, p: Principal, runtime: Runtime, body: StageRequest) -> Staged:
    """Copy a storage file of the runtime's space into its file area (an existing file there is replaced)."""
    require_active(runtime)
    row = await files.get(ctx, p, body.file_id)
    if row.space_id != runtime.space_id:
        raise files.file_not_found(body.file_id)
    return await stage_file(ctx, runtime, row, runtime_path=body.runtime_path, name=body.name)


# --- collect: runtime -> storage ----------------------------------------------------------------


def _open_source(real: Path, rel: str, field: str):
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise runtime_file_not_found(rel) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise path_invalid(field, rel, "is a symbolic link") from None
        raise
    mode = os.fstat(fd).st_mode  # before fdopen(), which refuses a directory with an OSError
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):  # as stage refuses a directory: only a file can be collected
            raise path_invalid(field, rel, "is a directory")
        raise runtime_file_not_found(rel)
    return os.fdopen(fd, "rb")


async def _read_source(f) -> AsyncIterator[bytes]:
    try:
        while data := await asyncio.to_thread(f.read, CHUNK_SIZE):
            yield data
    finally:
        f.close()


async def collect(ctx: AppContext, runtime: Runtime, body: CollectRequest) -> tuple[StorageFile, Artifact | None]:
    """Copy a runtime file into space storage (source `runtime`); with `artifact`, also a run artifact."""
    require_active(runtime)
    rel, real = resolve(area(ctx.settings, runtime.id), body.runtime_path, "runtimePath")
    path = files.check_path(
        body.storage_path if body.storage_path is not None else rel,
        "storagePath" if body.storage_path is not None else "runtimePath",
    )
    name = files.check_name(body.name, basename(path))
    async with ctx.db.read() as s:
        space = await s.get(Space, runtime.space_id)
        run = await s.get(Run, runtime.active_run_id) if runtime.active_run_id else None
    await files.ensure_free(ctx, space.id, path)
    source = await asyncio.to_thread(_open_source, real, rel, "runtimePath")
    store = make_store(ctx.settings)
    try:
        stored = await store.put_stream(new_key("files"), _read_source(source), max_bytes=ctx.settings.max_upload_bytes)
    finally:
        source.close()
    keys = [stored.key]
    content_type = files.content_type_for(None, basename(path), name)
    row = files.new_row(
        space,
        stored,
        path=path,
        name=name,
        content_type=content_type,
        metadata=body.metadata,
        source=files.Source.RUNTIME,
        run_id=run.id if run else None,
        runtime_id=runtime.id,
    )
    if body.artifact is None or run is None:
        return await files.commit(ctx, row, keys), None
    # The artifact gets its own copy, so deleting the storage file later leaves the run's record intact.
    try:
        stored_artifact = await store.put_stream(new_key("artifacts"), store.open(stored.key))
    except BaseException:
        await files.discard(ctx, keys)
        raise
    keys.append(stored_artifact.key)
    recorded: list[Artifact] = []

    async def add_artifact(s: AsyncSession) -> None:
        recorded.append(
            await artifacts.insert(
                s,
                run,
                stored_artifact,
                kind=body.artifact.kind,
                name=body.artifact.name or name,
                content_type=content_type,
                path=rel,
                metadata=body.metadata,
                file_id=row.id,
            )
        )

    return await files.commit(ctx, row, keys, add_artifact), recorded[0]


# --- upload: client -> storage -> runtime -------------------------------------------------------

RUNTIME_UPLOAD_FIELDS = frozenset({"runtimePath", "destinationPath", "path", "name", "metadata"})


async def upload(ctx: AppContext, runtime: Runtime, body: files.UploadBody) -> Staged:
    """Upload into the runtime's space (at `destinationPath`, else the file name) and stage it."""
    require_active(runtime)
    received = await files.receive(ctx, body, RUNTIME_UPLOAD_FIELDS)
    fields = received.fields
    try:
        if fields.get("destinationPath") is not None and fields.get("path") is not None:
            raise InvalidRequest("give only one of destinationPath and path")
        runtime_path = fields.get("runtimePath")
        if runtime_path is not None:  # refused before anything is stored
            resolve(area(ctx.settings, runtime.id), runtime_path, "runtimePath")
        async with ctx.db.read() as s:
            space = await s.get(Space, runtime.space_id)
    except BaseException:
        await files.discard(ctx, [received.stored.key])
        raise
    storage_field = "destinationPath" if fields.get("destinationPath") is not None else "path"
    row = await files.store_received(
        ctx,
        space,
        received,
        path=fields.get("destinationPath", fields.get("path")),
        name=fields.get("name"),
        metadata=fields.get("metadata"),
        runtime_id=runtime.id,
        path_field=storage_field,
    )
    try:
        return await stage_file(ctx, runtime, row, runtime_path=runtime_path, name=None)
    except BaseException:
        await files.delete_file(ctx, row)
        raise


# --- list ---------------------------------------------------------------------------------------


def _walk(root: Path) -> list[RuntimeFile]:
    found: list[RuntimeFile] = []
    if not root.is_dir():
        return found
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in filenames:
            if filename.startswith(_STAGING_PREFIX):
                continue
            full = Path(directory) / filename
            try:
                info = full.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):  # links and special files are not offered
                continue
            rel = full.relative_to(root).as_posix()
            found.append(
                RuntimeFile(
                    name=filename,
                    path=rel,
                    size_bytes=info.st_size,
                    modified_at=datetime.fromtimestamp(info.st_mtime, UTC),
                )
            )
    found.sort(key=lambda f: f.path)
    return found


async def list_runtime_files(
    ctx: AppContext, runtime: Runtime, page: PageParams
) -> tuple[list[RuntimeFile], str | None]:
    """Regular files in the runtime's area, by path; symbolic links are left out."""
    entries = await asyncio.to_thread(_walk, area(ctx.settings, runtime.id))
    if isinstance(page.after, str):
        entries = [e for e in entries if e.path > page.after]
    return split_page(entries, page, lambda e: e.path)

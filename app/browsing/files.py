"""A running browser's files: list, download, upload, move and delete inside its file area.

The area the API shows has three top-level directories:
- `/downloads`: the current run's downloads directory (where the browser saves what it downloads);
- `/workspace`: the runtime's file area (the same directory as the runtime files API), where uploads
  go so that the browser can use them, e.g. through a page's `<input type=file>`;
- `/files`: the run's space storage, read only (listing and download).
Nothing else of the machine is reachable. A path is `/<area>/<relative path>` (the leading `/` may be
left out); the relative part follows the runtime files rules (app/files/paths.py): no `..`, `.`,
empty segment, backslash or control character, and a symbolic link on the way is refused, so a path
never leaves the area (400 `runtime_file.path_invalid`).

Driver side (app/core/driver.py AreaDriver): the local driver works on its directories with
descriptor walks, the Docker driver in the container through exec (app/drivers/file_area.py).

These operations do not take the browser's controller: a CDP client that is attached may well want
the file it just asked for (a download) or is about to use (an upload). Each is a run event of category
`browser_files` (channel `files` in the current generation), naming the key that asked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.core.context import AppContext
from app.core.driver import AreaEntry, AreaRefused, DriverError
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from app.files import multipart
from app.files.models import StorageFile
from app.files.paths import check_relative
from app.files.runtime_files import NAME_MAX, PATH_INVALID
from app.files.service import UploadBody
from app.runs import events
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus
from app.storage import make_store
from app.storage.base import CHUNK_SIZE, StoredObject, TooLarge

CATEGORY = "browser_files"
WRITABLE = ("downloads", "workspace")
SPACE_AREA = "files"
TOP = ("downloads", "files", "workspace")
# What one upload may hold (the contract's limit), and one download.
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
# Space files looked at to list one directory of /files.
_SPACE_SCAN = 10_000


@dataclass
class Where:
    """A parsed path: its area (None: the top level) and the relative path in it ("" for its root)."""

    area: str | None
    rel: str

    @property
    def shown(self) -> str:
        if self.area is None:
            return "/"
        return f"/{self.area}/{self.rel}" if self.rel else f"/{self.area}"


@dataclass
class Entry:
    name: str
    path: str
    kind: str
    size_bytes: int | None
    modified_at: datetime | None


@dataclass
class Listing:
    run_id: uuid.UUID
    entries: list[Entry]
    has_more: bool
    next_cursor: str | None
    event_id: str


@dataclass
class Download:
    run_id: uuid.UUID
    name: str
    size: int
    sha256: str
    chunks: AsyncIterator[bytes]


@dataclass
class Done:
    """What a change did: its run, the event that records it and the paths."""

    run_id: uuid.UUID
    event_id: str
    path: str
    destination: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    # Where the browser itself sees the file (for a page's file input through DOM.setFileInputFiles).
    browser_path: str | None = None


# --- errors ------------------------------------------------------------------------------------------


def path_invalid(field: str, raw: str, reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not a path in the browser's file area: {reason}",
        code=PATH_INVALID,
        details={"field": field, "path": raw[:200], "reason": reason},
    )


def not_found(path: str) -> NotFound:
    return NotFound(f"No such file in the browser's file area: {path}", code="file.not_found", details={"path": path})


def conflict(path: str, reason: str) -> Conflict:
    return Conflict(f"{path} {reason}", code="run.file_path_conflict", details={"path": path, "reason": reason})


class TransferFailed(DomainError):
    status = 502
    code = "browser.file_transfer_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The browser's files could not be reached: {reason}")


class DownloadTooLarge(DomainError):
    status = 413
    code = "storage_file.too_large"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The file is {size} bytes; a download is at most {MAX_DOWNLOAD_BYTES} bytes",
            details={"sizeBytes": size, "maxBytes": MAX_DOWNLOAD_BYTES},
        )


@contextlib.contextmanager
def _mapped(where: Where, field: str = "path") -> Iterator[None]:
    """The driver's exceptions in this API's words."""
    shown = where.shown
    try:
        yield
    except FileNotFoundError:
        raise not_found(shown) from None
    except AreaRefused:
        raise path_invalid(field, shown, "a symbolic link on the way leads outside the file area") from None
    except FileExistsError:
        raise conflict(shown, "already exists; pass overwrite=true to replace it") from None
    except NotADirectoryError:
        raise path_invalid(field, shown, "a part of it is a file, not a directory") from None
    except IsADirectoryError:
        raise conflict(shown, "is a directory") from None
    except DriverError as exc:
        raise TransferFailed(exc.message) from exc
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY:
            raise conflict(shown, "is a directory that is not empty; pass recursive=true") from None
        raise TransferFailed(exc.strerror or type(exc).__name__) from exc


# --- paths -------------------------------------------------------------------------------------------


def parse(raw: object, field: str = "path") -> Where:
    """`/downloads/a/b.txt` -> Where("downloads", "a/b.txt"); 400 for anything outside the area."""
    if not isinstance(raw, str):
        raise path_invalid(field, "", "missing")
    text = raw[1:] if raw.startswith("/") else raw
    if text.endswith("/"):
        text = text[:-1]
    if text == "":
        return Where(None, "")
    first, _, rest = text.partition("/")
    if first not in TOP:
        raise path_invalid(
            field, raw, "the top level holds /downloads, /files and /workspace; nothing else is reachable"
        )
    if rest == "":
        return Where(first, "")
    rel = check_relative(rest, field=field, code=PATH_INVALID)
    if any(len(segment.encode()) > NAME_MAX for segment in rel.split("/")):
        raise path_invalid(field, raw, f"a path segment is longer than {NAME_MAX} bytes")
    return Where(first, rel)


def _writable(where: Where, field: str, what: str) -> None:
    if where.area is None or where.rel == "":
        raise path_invalid(field, where.shown, f"the top-level directories cannot be {what}")
    if where.area not in WRITABLE:
        raise path_invalid(field, where.shown, f"/files (the space's files) is read only: it cannot be {what}")


# --- the browser -------------------------------------------------------------------------------------


def _running(runtime: Runtime) -> uuid.UUID:
    if runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id is None:
        raise runtime_not_active(runtime.id, runtime.status, "The browser is not running; start it first")
    return runtime.active_run_id


def _root(ctx: AppContext, runtime: Runtime, area: str) -> str:
    roots = ctx.driver.file_areas(runtime.driver_state or {}, runtime.id)
    if area not in roots:
        raise TransferFailed(f"this browser has no {area} directory")
    return roots[area]


async def _event(ctx: AppContext, run_id: uuid.UUID, type: str, data: dict[str, Any], actor: str | None) -> str:
    async with ctx.db.transaction() as s:
        row = await events.append(s, run_id, f"{CATEGORY}.{type}", CATEGORY, {**data, "actor": actor})
    return str(row.id)


# --- list --------------------------------------------------------------------------------------------


def _cursor(run_id: uuid.UUID, where: Where, after: str) -> str:
    raw = json.dumps({"r": str(run_id), "p": where.shown, "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str | None, run_id: uuid.UUID, where: Where) -> str | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ok = data["r"] == str(run_id) and data["p"] == where.shown and isinstance(data["a"], str)
    except (ValueError, KeyError, TypeError, binascii.Error):
        ok = False
    if not ok:
        raise InvalidRequest(
            "cursor is not a cursor of this listing (of this directory in the browser's current run)",
            code="files.invalid_cursor",
            details={"field": "cursor"},
        )
    return data["a"]


def _when(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


async def _space_entries(ctx: AppContext, runtime: Runtime, rel: str) -> list[Entry]:
    """The children of directory `rel` of the space's files (directories are the paths' prefixes)."""
    prefix = f"{rel}/" if rel else ""
    async with ctx.db.read() as s:
        stmt = select(StorageFile.path, StorageFile.size_bytes, StorageFile.updated_at).where(
            StorageFile.space_id == runtime.space_id
        )
        if prefix:
            stmt = stmt.where(StorageFile.path.startswith(prefix, autoescape=True))
        rows = (await s.execute(stmt.limit(_SPACE_SCAN))).all()
    found: dict[str, Entry] = {}
    for path, size, updated in rows:
        name, _, deeper = path[len(prefix) :].partition("/")
        shown = f"/{SPACE_AREA}/{prefix}{name}"
        if deeper:
            found.setdefault(name, Entry(name, shown, "directory", None, None))
        else:
            found[name] = Entry(name, shown, "file", size, updated)
    if rel and not found:
        raise not_found(f"/{SPACE_AREA}/{rel}")
    return list(found.values())


async def list_dir(
    ctx: AppContext, runtime: Runtime, raw_path: str | None, limit: int, cursor: str | None, actor: str | None
) -> Listing:
    run_id = _running(runtime)
    where = parse(raw_path if raw_path is not None else "/")
    after = _after(cursor, run_id, where)
    if where.area is None:
        entries = [Entry(name, f"/{name}", "directory", None, None) for name in TOP]
    elif where.area == SPACE_AREA:
        entries = await _space_entries(ctx, runtime, where.rel)
    else:
        root = _root(ctx, runtime, where.area)
        with _mapped(where):
            found: list[AreaEntry] = await ctx.driver.area_list(runtime.driver_state or {}, root, where.rel)
        base = where.shown
        entries = [Entry(e.name, f"{base}/{e.name}", e.kind, e.size_bytes, _when(e.modified_at)) for e in found]
    entries.sort(key=lambda e: e.name)
    if after is not None:
        entries = [e for e in entries if e.name > after]
    page, more = entries[:limit], len(entries) > limit
    event_id = await _event(ctx, run_id, "listed", {"path": where.shown, "count": len(page)}, actor)
    next_cursor = _cursor(run_id, where, page[-1].name) if more and page else None
    return Listing(run_id, page, more, next_cursor, event_id)


# --- download ----------------------------------------------------------------------------------------


def _digest(f, limit: int) -> tuple[int, str]:
    """Size and SHA-256 of the file's first `limit` bytes (its size when opened: the browser may still be
    writing to it, and a file that keeps growing must not be read without end)."""
    digest = hashlib.sha256()
    size = 0
    while size < limit and (data := f.read(min(CHUNK_SIZE, limit - size))):
        size += len(data)
        digest.update(data)
    f.seek(0)
    return size, digest.hexdigest()


async def _read(f, limit: int) -> AsyncIterator[bytes]:
    """The file's first `limit` bytes (the size the download announced and hashed)."""
    sent = 0
    try:
        while sent < limit and (data := await asyncio.to_thread(f.read, min(CHUNK_SIZE, limit - sent))):
            sent += len(data)
            yield data
    finally:
        f.close()


async def download(ctx: AppContext, runtime: Runtime, raw_path: str, actor: str | None) -> Download:
    run_id = _running(runtime)
    where = parse(raw_path)
    if where.area is None or where.rel == "":
        raise path_invalid("path", where.shown, "is a directory")
    if where.area == SPACE_AREA:
        async with ctx.db.read() as s:
            row = (
                await s.execute(
                    select(StorageFile).where(StorageFile.space_id == runtime.space_id, StorageFile.path == where.rel)
                )
            ).scalar_one_or_none()
        if row is None:
            raise not_found(where.shown)
        if row.size_bytes > MAX_DOWNLOAD_BYTES:
            raise DownloadTooLarge(row.size_bytes)
        await _event(ctx, run_id, "downloaded", {"path": where.shown, "sizeBytes": row.size_bytes}, actor)
        return Download(run_id, row.name, row.size_bytes, row.sha256, make_store(ctx.settings).open(row.object_key))
    root = _root(ctx, runtime, where.area)
    with _mapped(where):
        try:
            f = await ctx.driver.area_open(runtime.driver_state or {}, root, where.rel)
        except IsADirectoryError:
            raise path_invalid("path", where.shown, "is a directory, not a file") from None
    try:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_DOWNLOAD_BYTES:
            raise DownloadTooLarge(size)
        size, sha256 = await asyncio.to_thread(_digest, f, size)
        await _event(ctx, run_id, "downloaded", {"path": where.shown, "sizeBytes": size}, actor)
    except BaseException:
        f.close()
        raise
    return Download(run_id, where.rel.rsplit("/", 1)[-1], size, sha256, _read(f, size))


# --- upload ------------------------------------------------------------------------------------------


class _TempFileStore:
    """Just enough of an object store for multipart.receive: the file part goes to one local temp file."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="bctrl-upload-")
        os.close(fd)
        self.path = Path(name)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        out = await asyncio.to_thread(self.path.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def delete(self, key: str) -> None:
        self.path.unlink(missing_ok=True)


async def upload(
    ctx: AppContext,
    runtime: Runtime,
    raw_path: str,
    body: UploadBody,
    *,
    overwrite: bool,
    create_parents: bool,
    actor: str | None,
) -> Done:
    run_id = _running(runtime)
    where = parse(raw_path)
    _writable(where, "path", "written")
    root = _root(ctx, runtime, where.area)
    store = _TempFileStore()
    try:
        received = await multipart.receive(
            store,  # type: ignore[arg-type]
            "upload",
            content_type=body.content_type,
            content_length=body.content_length,
            body=body.stream,
            max_file_bytes=min(MAX_UPLOAD_BYTES, ctx.settings.max_upload_bytes),
        )
        if received.fields:
            raise InvalidRequest(
                f"Unknown form fields: {', '.join(sorted(received.fields))} (the path and options are query parameters)",
                details={
                    "fields": [
                        {"field": f, "in": "body", "message": "unknown field", "type": "extra_forbidden"}
                        for f in sorted(received.fields)
                    ]
                },
            )
        with _mapped(where):
            await ctx.driver.area_put(
                runtime.driver_state or {}, root, where.rel, store.path, overwrite, create_parents
            )
    finally:
        store.path.unlink(missing_ok=True)
    stored = received.stored
    data = {"path": where.shown, "sizeBytes": stored.size, "sha256": stored.sha256, "overwrite": overwrite}
    event_id = await _event(ctx, run_id, "uploaded", data, actor)
    browser_path = f"{root.rstrip('/')}/{where.rel}"
    return Done(run_id, event_id, where.shown, size_bytes=stored.size, sha256=stored.sha256, browser_path=browser_path)


# --- move and delete ---------------------------------------------------------------------------------


async def move(
    ctx: AppContext, runtime: Runtime, source: str, destination: str, overwrite: bool, actor: str | None
) -> Done:
    run_id = _running(runtime)
    src = parse(source, "sourcePath")
    dst = parse(destination, "destinationPath")
    _writable(src, "sourcePath", "moved")
    _writable(dst, "destinationPath", "replaced")
    if src.shown == dst.shown:
        raise path_invalid("destinationPath", dst.shown, "is the source itself")
    if dst.area == src.area and dst.rel.startswith(src.rel + "/"):
        raise path_invalid("destinationPath", dst.shown, "is inside the source")
    state = runtime.driver_state or {}
    with _mapped(src, "sourcePath"):
        try:
            await ctx.driver.area_move(
                state, _root(ctx, runtime, src.area), src.rel, _root(ctx, runtime, dst.area), dst.rel, overwrite
            )
        except FileExistsError:
            raise conflict(dst.shown, "already exists; pass overwrite=true to replace it") from None
        except IsADirectoryError:
            raise conflict(dst.shown, "is a directory; a file cannot replace it") from None
    data = {"sourcePath": src.shown, "destinationPath": dst.shown, "overwrite": overwrite}
    event_id = await _event(ctx, run_id, "moved", data, actor)
    return Done(run_id, event_id, src.shown, destination=dst.shown)


async def delete(ctx: AppContext, runtime: Runtime, raw_path: str, recursive: bool, actor: str | None) -> Done:
    run_id = _running(runtime)
    where = parse(raw_path)
    _writable(where, "path", "deleted")
    with _mapped(where):
        await ctx.driver.area_delete(runtime.driver_state or {}, _root(ctx, runtime, where.area), where.rel, recursive)
    event_id = await _event(ctx, run_id, "deleted", {"path": where.shown, "recursive": recursive}, actor)
    return Done(run_id, event_id, where.shown)

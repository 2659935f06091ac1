"""A run's files: its outputs (what it produced: files collected from or exported out of its browser,
and the downloads, recording and screenshots it recorded) and its inputs (space files bound to it,
each copied into its browser's file area, where a page can read it).

An input's copy is made while the request waits, so its state is `ready` when the answer comes, or
`failed` with the reason when the copy could not be written (then `retry` copies it again). Binding,
retrying, collecting and uploading need the run to be its browser's active run (409 `run.not_active`
otherwise); listing, reading and removing do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError

from app.artifacts.models import Artifact
from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.paging import PageParams
from app.files import catalog, runtime_files
from app.files import service as files
from app.files.catalog import Entry
from app.files.models import RunInput, StorageFile
from app.files.paths import basename
from app.files.schemas import CollectRequest
from app.runs.models import Run, RunStatus
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces.models import Space

INPUT, OUTPUT = "input", "output"
READY, FAILED = "ready", "failed"
TRANSFER_FAILED = "browser.file_transfer_failed"
UPLOAD_FIELDS = frozenset({"filename", "path"})


@dataclass(frozen=True)
class RunFile:
    """A file of the run, in its role; `binding` is set for an input while it is bound."""

    role: str
    entry: Entry
    binding: RunInput | None = None
    runtime_area: Path | None = None  # where the run's browser reads its inputs

    @property
    def runtime_path(self) -> str | None:
        if self.binding is None or self.runtime_area is None:
            return None
        return str(self.runtime_area / self.binding.runtime_path)


def run_not_active(run: Run) -> Conflict:
    return Conflict(
        "The run is not active: its browser's files can only be changed while it runs",
        code="run.not_active",
        details={"runId": str(run.id), "status": run.status},
    )


def not_an_input(entry: Entry) -> Conflict:
    return Conflict(
        "This file is an output of the run; only inputs are removed or copied again (delete an output "
        "with DELETE /v1/files/{fileId})",
        code="resource.conflict",
        details={"fileId": str(entry.id)},
    )


async def runtime_of(ctx: AppContext, run: Run) -> Runtime | None:
    async with ctx.db.read() as s:
        return await s.get(Runtime, run.runtime_id)


async def active_runtime(ctx: AppContext, run: Run) -> Runtime:
    """The run's browser while this run is its active one and running; 409 `run.not_active` otherwise."""
    runtime = await runtime_of(ctx, run)
    async with ctx.db.read() as s:
        fresh = await s.get(Run, run.id)
    if (
        fresh is None
        or fresh.status != RunStatus.ACTIVE
        or runtime is None
        or runtime.active_run_id != run.id
        or runtime.status != RuntimeStatus.ACTIVE
    ):
        raise run_not_active(fresh or run)
    return runtime


def _area(ctx: AppContext, run: Run) -> Path:
    return runtime_files.area(ctx.settings, run.runtime_id)


def _of_input(ctx: AppContext, run: Run, binding: RunInput, stored: StorageFile) -> RunFile:
    return RunFile(INPUT, Entry(stored=stored), binding, _area(ctx, run))


# --- list and get ---------------------------------------------------------------------------------


def _inputs(run: Run):
    return select(RunInput.id.label("id"), literal("input").label("tag")).where(RunInput.run_id == run.id)


async def list_files(
    ctx: AppContext, run: Run, page: PageParams, *, newest_first: bool = True, role: str | None = None
) -> tuple[list[RunFile], str | None]:
    """Outputs and inputs of the run, by when they became the run's (the cursor is the listed id)."""
    outputs = catalog.Filters(run_id=run.id)
    parts = []
    if role in (None, OUTPUT):
        parts += [catalog.stored_ids(run.account_id, outputs), catalog.recorded_ids(run.account_id, outputs)]
    if role in (None, INPUT):
        parts.append(_inputs(run))
    found, cursor = await catalog.page_of(ctx, parts, page, newest_first=newest_first)
    async with ctx.db.read() as s:
        rows = await catalog.load(s, found)
        wanted = [i for i, tag in found if tag == "input"]
        bindings = {}
        if wanted:
            result = await s.execute(
                select(RunInput, StorageFile)
                .join(StorageFile, StorageFile.id == RunInput.file_id)
                .where(RunInput.id.in_(wanted))
            )
            bindings = {binding.id: (binding, stored) for binding, stored in result}
    listed: list[RunFile] = []
    for item_id, tag in found:
        if tag == "input" and item_id in bindings:
            listed.append(_of_input(ctx, run, *bindings[item_id]))
        elif item_id in rows:
            listed.append(RunFile(OUTPUT, catalog.entry_of(rows[item_id])))
    return listed, cursor


async def get(ctx: AppContext, run: Run, file_id: str) -> RunFile:
    """The run's input or output with this file id; 404 `file.not_found` otherwise."""
    wanted = ids.parse_uuid(file_id)
    if wanted is None:
        raise files.file_not_found(file_id)
    async with ctx.db.read() as s:
        bound = (
            await s.execute(
                select(RunInput, StorageFile)
                .join(StorageFile, StorageFile.id == RunInput.file_id)
                .where(RunInput.run_id == run.id, RunInput.file_id == wanted)
            )
        ).first()
        if bound is not None:
            return _of_input(ctx, run, *bound)
        stored = await s.get(StorageFile, wanted)
        if stored is not None and stored.run_id == run.id and stored.account_id == run.account_id:
            return RunFile(OUTPUT, Entry(stored=stored))
        artifact = await s.get(Artifact, wanted)
    if artifact is not None and artifact.run_id == run.id and artifact.path is None:
        return RunFile(OUTPUT, Entry(artifact=artifact))
    raise files.file_not_found(file_id)


# --- inputs ---------------------------------------------------------------------------------------


async def _copy_in(ctx: AppContext, runtime: Runtime, stored: StorageFile, runtime_path: str) -> tuple[str, str | None]:
    """Copy the file into the browser's file area: (state, failure detail). A path the area refuses is a
    400 before anything is written; a write that fails (a full disk, a vanished directory) is `failed`."""
    runtime_files.resolve(runtime_files.area(ctx.settings, runtime.id), runtime_path, "path")
    try:
        await runtime_files.stage_file(ctx, runtime, stored, runtime_path=runtime_path, name=None, field="path")
    except OSError as exc:
        return FAILED, f"The copy could not be written: {exc.strerror or type(exc).__name__}"
    return READY, None


async def add(ctx: AppContext, run: Run, stored: StorageFile) -> RunFile:
    """Bind a space file of the run's space to the run and copy it into its browser's file area at the
    file's space path. A file already bound is answered as it is (no second copy)."""
    if stored.space_id != run.space_id or stored.account_id != run.account_id:
        raise files.file_not_found(stored.id)
    runtime = await active_runtime(ctx, run)
    with contextlib.suppress(NotFound):
        existing = await get(ctx, run, str(stored.id))
        if existing.role == INPUT:
            return existing
    state, detail = await _copy_in(ctx, runtime, stored, stored.path)
    now = clock.now()
    binding = RunInput(
        id=ids.new_id(),
        account_id=run.account_id,
        run_id=run.id,
        file_id=stored.id,
        runtime_path=stored.path,
        state=state,
        failure_code=TRANSFER_FAILED if detail else None,
        failure_detail=detail,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            s.add(binding)
    except IntegrityError:
        # Bound by a concurrent request (answer that binding), or the file was deleted meanwhile (404).
        found = await get(ctx, run, str(stored.id))
        if found.role == INPUT:
            return found
        raise
    return _of_input(ctx, run, binding, stored)


async def remove(ctx: AppContext, run: Run, item: RunFile) -> RunFile:
    """Unbind an input: its copy leaves the browser's file area (while the run is active) and the
    binding ends; the space file stays. The answer is the file with no binding."""
    if item.role != INPUT or item.binding is None:
        raise not_an_input(item.entry)
    runtime = await runtime_of(ctx, run)
    if runtime is not None and runtime.active_run_id == run.id and item.binding.state == READY:
        with contextlib.suppress(InvalidRequest, OSError):
            _, real = runtime_files.resolve(_area(ctx, run), item.binding.runtime_path, "path")
            await asyncio.to_thread(_unlink_file, real)
    async with ctx.db.transaction() as s:
        row = await s.get(RunInput, item.binding.id)
        if row is not None:
            await s.delete(row)
    return RunFile(INPUT, item.entry, None, None)


def _unlink_file(real: Path) -> None:
    if real.is_file() and not real.is_symlink():
        real.unlink()


async def retry(ctx: AppContext, run: Run, item: RunFile) -> RunFile:
    """Copy an input into the browser's file area again (after a failure, or to restore a copy a page
    changed); its state says how it went."""
    if item.role != INPUT or item.binding is None:
        raise not_an_input(item.entry)
    runtime = await active_runtime(ctx, run)
    state, detail = await _copy_in(ctx, runtime, item.entry.stored, item.binding.runtime_path)
    async with ctx.db.transaction() as s:
        row = await s.get(RunInput, item.binding.id)
        if row is None:
            raise files.file_not_found(item.entry.id)
        row.state = state
        row.failure_code = TRANSFER_FAILED if detail else None
        row.failure_detail = detail
        row.updated_at = clock.now()
    return _of_input(ctx, run, row, item.entry.stored)


# --- outputs --------------------------------------------------------------------------------------


def relative_in_area(ctx: AppContext, run: Run, raw: str) -> str:
    """A runtime path as the area's relative path: an absolute path inside the browser's file area (as
    an input's `runtimePath` reads) is accepted as well as a relative one."""
    if raw.startswith("/"):
        root = _area(ctx, run)
        candidate = Path(os.path.normpath(raw))
        if candidate.is_relative_to(root) and candidate != root:
            return candidate.relative_to(root).as_posix()
    return raw


async def collect(ctx: AppContext, run: Run, *, runtime_path: str, name: str | None, path: str | None) -> RunFile:
    """Save a file of the browser's file area into space storage (at `path`, else its runtime path)
    as an output of the run."""
    runtime = await active_runtime(ctx, run)
    body = CollectRequest.model_validate(
        {"runtimePath": relative_in_area(ctx, run, runtime_path), "storagePath": path, "name": name}
    )
    stored, _ = await runtime_files.collect(ctx, runtime, body)
    return RunFile(OUTPUT, Entry(stored=stored))


async def upload(ctx: AppContext, run: Run, body: files.UploadBody) -> RunFile:
    """Upload into the run's space (at `path`, else `uploads/<filename>`) and bind it as an input."""
    await active_runtime(ctx, run)
    received = await files.receive(ctx, body, UPLOAD_FIELDS)
    form = received.fields
    part_name = basename((received.filename or "").replace("\\", "/"))
    display = form.get("filename")
    path = form.get("path")
    if path is None:
        default_name = display.strip() if display and display.strip() else part_name
        if default_name and default_name not in (".", ".."):
            path = f"uploads/{default_name}"
    try:
        async with ctx.db.read() as s:
            space = await s.get(Space, run.space_id)
    except BaseException:
        await files.discard(ctx, [received.stored.key])
        raise
    stored = await files.store_received(
        ctx, space, received, path=path, name=display, metadata=None, runtime_id=run.runtime_id
    )
    try:
        return await add(ctx, run, stored)
    except BaseException:
        await files.delete_file(ctx, stored)
        raise

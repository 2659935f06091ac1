"""Files in the current generation: `/v1/files` (space storage, with the files runs recorded) and
`/v1/runs/{id}/files` (a run's inputs and outputs).

Both paths are served by the flat generation too (`bctrl.legacy`), so every route here is a
`CurrentRoute` out of /openapi.json: it matches only requests carrying `BCTRL-Version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.generation import CurrentRoute
from app.core.ids import parse_uuid
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.current.file_schemas import (
    FileDeletedOut,
    FileOut,
    FilePage,
    FilePatch,
    RunFileAdd,
    RunFileCollect,
    RunFileOut,
    RunFilePage,
    file_out,
    folder_out,
    run_file_out,
)
from app.current.paths import ScopeSpace, SpaceHeader, SpaceQuery, chosen_space
from app.current.schemas import Order
from app.files import catalog, run_files
from app.files import service as files
from app.files.catalog import Entry
from app.files.run_files import RunFile
from app.runs import service as runs
from app.runs.paths import PathRun
from app.spaces import service as spaces
from app.storage import http as content
from app.storage import make_store

storage = APIRouter(prefix="/v1/files", tags=["files (current)"], route_class=CurrentRoute, include_in_schema=False)
of_run = APIRouter(
    prefix="/v1/runs/{run_id}/files", tags=["files (current)"], route_class=CurrentRoute, include_in_schema=False
)
routers: tuple[APIRouter, ...] = (storage, of_run)

Page = Annotated[PageParams, Depends(page_params)]
RangeHeader = Annotated[str | None, Header(alias="Range")]
IfRangeHeader = Annotated[str | None, Header(alias="If-Range")]
RunIdQuery = Annotated[str | None, Query(alias="runId", max_length=64)]
STORAGE_FIELDS = frozenset({"path", "filename", "metadata"})


def _body(request: Request) -> files.UploadBody:
    return files.UploadBody(
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        stream=request.stream(),
    )


def _fingerprint(request: Request) -> dict[str, Any]:
    # A streamed body cannot be hashed before it is read: the key covers the query and the length.
    return {"query": str(request.url.query), "length": request.headers.get("content-length")}


async def path_entry(ctx: CtxDep, p: PrincipalDep, file_id: str, run_id: RunIdQuery = None) -> Entry:
    """The file `{fileId}` names; with `runId`, only if it is one of that run's files (404 otherwise)."""
    entry = await catalog.get(ctx, p, file_id)
    if run_id is not None:
        run = await runs.get(ctx, p, run_id)
        await run_files.get(ctx, run, str(entry.id))
    return entry


async def path_run_file(ctx: CtxDep, run: PathRun, file_id: str) -> RunFile:
    return await run_files.get(ctx, run, file_id)


PathEntry = Annotated[Entry, Depends(path_entry)]
PathRunFile = Annotated[RunFile, Depends(path_run_file)]


# --- /v1/files ------------------------------------------------------------------------------------


@storage.post("", status_code=201, response_model=FileOut, responses=errors(400, 404, 409, 413))
async def upload(
    ctx: CtxDep,
    p: PrincipalDep,
    request: Request,
    idem: IdempotencyDep,
    space_id: SpaceQuery = None,
    header: SpaceHeader = None,
):
    """Upload (multipart `file`, `path`, `filename`, `metadata`) into the named space, else the default one."""
    space = await spaces.resolve(ctx, p, chosen_space(space_id, header))

    async def make() -> FileOut:
        row = await files.upload(ctx, _body(request), space=space, fields=STORAGE_FIELDS, name_field="filename")
        return file_out(Entry(stored=row))

    return await idem.once(make, _fingerprint(request))


@storage.get("", response_model=FilePage, responses=errors(400, 404))
async def list_files(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    kinds: Annotated[list[str] | None, Depends(multi("type", Annotated[str, Query(max_length=64)]))],
    source: Annotated[Literal["upload", "runtime"] | None, Query()] = None,
    path: Annotated[str | None, Query(max_length=4096)] = None,
    prefix: Annotated[str | None, Query(max_length=4096)] = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    run_id: Annotated[str | None, Query(alias="runId", max_length=64)] = None,
    runtime_id: Annotated[str | None, Query(alias="runtimeId", max_length=64)] = None,
    created_after: Annotated[datetime | None, Query(alias="createdAfter")] = None,
    include: Annotated[Literal["folders"] | None, Query()] = None,
    order: Annotated[Order, Query()] = "desc",
) -> FilePage:
    """Files of the account (or the scoped space): uploads, files runs collected or exported, and the
    downloads and recordings runs recorded; newest first by default."""
    if (run_id is not None and parse_uuid(run_id) is None) or (
        runtime_id is not None and parse_uuid(runtime_id) is None
    ):
        return FilePage(data=[], has_more=False, folders=[] if include else None)
    filters = catalog.Filters(
        space_id=space.id if space else None,
        produced=None if source is None else source == "runtime",
        path=path,
        prefix=prefix,
        q=q,
        run_id=parse_uuid(run_id) if run_id else None,
        runtime_id=parse_uuid(runtime_id) if runtime_id else None,
        kinds=kinds,
        created_after=created_after,
    )
    entries, cursor = await catalog.list_entries(ctx, p.account_id, filters, page, newest_first=order == "desc")
    folders = [folder_out(f) for f in await catalog.folders(ctx, p.account_id, filters)] if include else None
    return FilePage(
        data=[file_out(e) for e in entries], has_more=cursor is not None, next_cursor=cursor, folders=folders
    )


@storage.get("/{file_id}", response_model=FileOut, responses=errors(404))
async def get_file(entry: PathEntry) -> FileOut:
    return file_out(entry)


@storage.patch("/{file_id}", response_model=FileOut, responses=errors(400, 404))
async def update_file(ctx: CtxDep, entry: PathEntry, body: FilePatch) -> FileOut:
    """Rename (`filename`) or replace caller metadata."""
    changes = {"name" if f == "filename" else f for f in body.model_fields_set}
    return file_out(await catalog.update(ctx, entry, name=body.filename, metadata=body.metadata, changes=changes))


@storage.delete("/{file_id}", response_model=FileDeletedOut, responses=errors(403, 404))
async def delete_file(ctx: CtxDep, entry: PathEntry) -> FileDeletedOut:
    """Delete the file and its bytes; the run's recording goes only with its run (403)."""
    return FileDeletedOut(id=str(await catalog.delete(ctx, entry)))


@storage.get("/{file_id}/content", response_class=StreamingResponse, responses=errors(404, 503))
async def file_content(
    ctx: CtxDep, entry: PathEntry, range_: RangeHeader = None, if_range: IfRangeHeader = None
) -> StreamingResponse:
    """The bytes as an attachment; a single `Range: bytes=...` gets 206."""
    return await content.serve(make_store(ctx.settings), catalog.content(entry), range_, if_range)


# --- /v1/runs/{runId}/files -----------------------------------------------------------------------


@of_run.get("", response_model=RunFilePage, responses=errors(400, 404))
async def list_run_files(
    ctx: CtxDep,
    run: PathRun,
    page: Page,
    role: Annotated[Literal["input", "output"] | None, Query()] = None,
    order: Annotated[Order, Query()] = "desc",
) -> RunFilePage:
    """The run's outputs (collected, exported, downloaded, its recording) and its bound inputs."""
    items, cursor = await run_files.list_files(ctx, run, page, newest_first=order == "desc", role=role)
    return RunFilePage(data=[run_file_out(i) for i in items], has_more=cursor is not None, next_cursor=cursor)


@of_run.post("", status_code=201, response_model=RunFileOut, responses=errors(400, 404, 409))
async def add_run_file(ctx: CtxDep, p: PrincipalDep, run: PathRun, body: RunFileAdd, idem: IdempotencyDep):
    """Bind a space file to the run; its copy in the browser is at `runtimePath`."""

    async def make() -> RunFileOut:
        stored = await files.get(ctx, p, body.file_id)
        return run_file_out(await run_files.add(ctx, run, stored))

    return await idem.once(make, body.model_dump(mode="json"))


@of_run.post("/collect", status_code=201, response_model=RunFileOut, responses=errors(400, 404, 409, 413))
async def collect_run_file(ctx: CtxDep, run: PathRun, body: RunFileCollect, idem: IdempotencyDep):
    """Save a file of the run's browser file area into space storage as an output of the run."""

    async def make() -> RunFileOut:
        item = await run_files.collect(ctx, run, runtime_path=body.runtime_path, name=body.filename, path=body.path)
        return run_file_out(item)

    return await idem.once(make, body.model_dump(mode="json"))


@of_run.post("/upload", status_code=201, response_model=RunFileOut, responses=errors(400, 404, 409, 413))
async def upload_run_file(ctx: CtxDep, run: PathRun, request: Request, idem: IdempotencyDep):
    """Upload (multipart `file`, `filename`, `path`) into the run's space and bind it as an input."""

    async def make() -> RunFileOut:
        return run_file_out(await run_files.upload(ctx, run, _body(request)))

    return await idem.once(make, _fingerprint(request))


@of_run.get("/{file_id}", response_model=RunFileOut, responses=errors(404))
async def get_run_file(item: PathRunFile) -> RunFileOut:
    return run_file_out(item)


@of_run.delete("/{file_id}", response_model=RunFileOut, responses=errors(404, 409))
async def remove_run_file(ctx: CtxDep, run: PathRun, item: PathRunFile) -> RunFileOut:
    """Unbind an input (its copy leaves the browser; the space file stays); an output is 409."""
    return run_file_out(await run_files.remove(ctx, run, item))


@of_run.post("/{file_id}/retry", response_model=RunFileOut, responses=errors(404, 409))
async def retry_run_file(ctx: CtxDep, run: PathRun, item: PathRunFile) -> RunFileOut:
    """Copy an input into the browser again."""
    return run_file_out(await run_files.retry(ctx, run, item))

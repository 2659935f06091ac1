"""File routes: space storage (seed and flat), runtime file areas (seed and flat), run files and exports."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.artifacts.schemas import ArtifactOut
from app.core import openapi
from app.core.paging import PageParams, page_params
from app.core.schemas import Deleted, errors
from app.files import runtime_files, service
from app.files.pathobjects import FlatFile, SeedFile
from app.files.paths import MAX_PATH, NAME_PATTERN, PATH_PATTERN
from app.files.schemas import (
    CollectOut,
    CollectRequest,
    ExportRequest,
    FileList,
    FileOut,
    FileUpdate,
    RuntimeFileList,
    RuntimeFileOut,
    StagedFile,
    StageRequest,
    UploadOut,
)
from app.runs.paths import PathRun
from app.runtimes.paths import FlatRuntime, SeedRuntime
from app.spaces import service as spaces
from app.spaces.models import Space
from app.spaces.paths import PathSpace, QuerySpace
from app.storage import http as content
from app.storage import make_store

Page = Annotated[PageParams, Depends(page_params)]
Prefix = Annotated[str | None, Query(max_length=4096, description="Only files whose path starts with this")]
SpaceQuery = Annotated[
    str | None, Query(alias="spaceId", description="Space id or `default`; default space when absent")
]
RangeHeader = Annotated[str | None, Header(alias="Range")]
IfRangeHeader = Annotated[str | None, Header(alias="If-Range")]

# The flat upload's form may also name the space (`spaceId`) when the query does not.
FLAT_UPLOAD_FIELDS = service.UPLOAD_FIELDS | {"spaceId"}

# Upload routes stream their bodies and enforce BCTRL_MAX_UPLOAD_BYTES themselves (app/files/multipart.py),
# so the general body cap (BCTRL_MAX_BODY_BYTES) does not apply to them. The last is the current
# generation's upload into a run (app/current/files.py).
UPLOAD_PATHS = re.compile(
    r"^/v1/(spaces/[^/]+/storage/files|files|spaces/[^/]+/runtimes/[^/]+/files/upload"
    r"|runtimes/[^/]+/files/upload|runs/[^/]+/files/upload)/?$"
)

storage = APIRouter(prefix="/v1/spaces/{space_id}/storage/files", tags=["files (seed)"])
flat = APIRouter(prefix="/v1/files", tags=["files"])
runtime_seed = APIRouter(prefix="/v1/spaces/{space_id}/runtimes/{runtime_id}/files", tags=["runtime files (seed)"])
runtime_flat = APIRouter(prefix="/v1/runtimes/{runtime_id}/files", tags=["runtime files"])
runs = APIRouter(prefix="/v1/runs/{run_id}/files", tags=["files"])
routers = (storage, flat, runtime_seed, runtime_flat, runs)


def _multipart(**fields: str) -> dict[str, Any]:
    properties = {"file": {"type": "string", "format": "binary", "description": "The bytes"}}
    properties.update(
        {name: {"type": "string", "description": text, **_FORM_RULES.get(name, {})} for name, text in fields.items()}
    )
    # Other form fields are refused (400 naming them), as JSON bodies refuse unknown fields.
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": properties,
                        "additionalProperties": False,
                    },
                    "encoding": {"metadata": {"contentType": "application/json"}},
                }
            },
        }
    }


_PATH_RULE = {"maxLength": MAX_PATH, "pattern": PATH_PATTERN}
_FORM_RULES = {
    "path": _PATH_RULE,
    "runtimePath": _PATH_RULE,
    "destinationPath": _PATH_RULE,
    "name": {"maxLength": 255, "pattern": NAME_PATTERN},
    "metadata": {"type": "object"},
}


STORAGE_FORM = dict(
    path="Relative path in the space (defaults to the file name); no `.`/`..` segments",
    name="Display name, up to 255 characters (defaults to the path's last segment)",
    metadata="A JSON object (the part's text is its JSON)",
)
RUNTIME_FORM = dict(
    runtimePath="Where in the runtime's file area (defaults to the file name)",
    destinationPath="Path in space storage (defaults to the file name)",
    name=STORAGE_FORM["name"],
    metadata=STORAGE_FORM["metadata"],
)


def _body(request: Request) -> service.UploadBody:
    return service.UploadBody(
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        stream=request.stream(),
    )


def _upload_fingerprint(request: Request) -> dict[str, Any]:
    # A streamed body cannot be hashed before it is read: the key covers the route, the query and the length.
    return {"query": str(request.url.query), "length": request.headers.get("content-length")}


def _staged(staged: runtime_files.Staged) -> StagedFile:
    return StagedFile(
        id=str(staged.id),
        file_id=str(staged.file.id),
        runtime_id=str(staged.runtime_id),
        name=staged.name,
        path=str(staged.path),
        runtime_path=staged.runtime_path,
        size_bytes=staged.size_bytes,
        expires_at=None,
    )


def _runtime_file_list(entries: list[runtime_files.RuntimeFile], cursor: str | None) -> RuntimeFileList:
    items = [
        RuntimeFileOut(name=e.name, path=e.path, size_bytes=e.size_bytes, modified_at=e.modified_at) for e in entries
    ]
    return RuntimeFileList(data=items, files=items, next_cursor=cursor)


def _collected(row, artifact) -> CollectOut:
    return CollectOut.of(row).model_copy(update={"artifact": ArtifactOut.of(artifact) if artifact else None})


# --- space storage, seed ------------------------------------------------------------------------


@storage.post(
    "",
    status_code=201,
    response_model=FileOut,
    responses=errors(400, 404, 409, 413),
    openapi_extra=_multipart(**STORAGE_FORM),
)
async def upload_seed(ctx: CtxDep, space: PathSpace, request: Request, idem: IdempotencyDep):
    """Upload a file (multipart `file`, `path`, `name`, `metadata`); the body is streamed to storage."""

    async def make() -> FileOut:
        return FileOut.of(await service.upload(ctx, _body(request), space=space))

    return await idem.once(make, _upload_fingerprint(request))


@storage.get("", response_model=FileList, responses=errors(400, 404))
async def list_seed(ctx: CtxDep, space: PathSpace, page: Page, prefix: Prefix = None) -> FileList:
    rows, cursor = await service.list_files(ctx, space, page, prefix=prefix)
    return FileList.of(rows, cursor)


@storage.get("/{file_id}", response_model=FileOut, responses=errors(404))
async def get_seed(row: SeedFile) -> FileOut:
    return FileOut.of(row)


@storage.patch("/{file_id}", response_model=FileOut, responses=errors(400, 404))
async def update_seed(ctx: CtxDep, row: SeedFile, body: FileUpdate) -> FileOut:
    return FileOut.of(await service.update_file(ctx, row, body))


@storage.delete("/{file_id}", response_model=Deleted, responses=errors(404))
async def delete_seed(ctx: CtxDep, row: SeedFile) -> Deleted:
    return Deleted(id=str(await service.delete_file(ctx, row)))


@storage.get(
    "/{file_id}/content", response_class=StreamingResponse, responses={**errors(404, 503), **openapi.download()}
)
async def content_seed(
    ctx: CtxDep, row: SeedFile, range_: RangeHeader = None, if_range: IfRangeHeader = None
) -> StreamingResponse:
    """The file's bytes as an attachment; a single `Range: bytes=...` gets 206."""
    return await content.serve(make_store(ctx.settings), service.content(row), range_, if_range)


# --- space storage, flat ------------------------------------------------------------------------


@flat.post(
    "",
    status_code=201,
    response_model=FileOut,
    responses=errors(400, 404, 409, 413),
    openapi_extra=_multipart(**STORAGE_FORM, spaceId="Space id when not given as ?spaceId"),
)
async def upload_flat(
    ctx: CtxDep, p: PrincipalDep, request: Request, idem: IdempotencyDep, space_id: SpaceQuery = None
):
    """Upload into `spaceId` (query or form), else the default space."""

    async def make() -> FileOut:
        # Checked before the body is read when the query names the space; else the form may name it.
        async def of_form(form: dict) -> Space:
            return await spaces.resolve(ctx, p, form.get("spaceId") or None)

        space = await spaces.get(ctx, p, space_id) if space_id is not None else of_form
        return FileOut.of(await service.upload(ctx, _body(request), space=space, fields=FLAT_UPLOAD_FIELDS))

    return await idem.once(make, _upload_fingerprint(request))


@flat.get("", response_model=FileList, responses=errors(400, 404))
async def list_flat(ctx: CtxDep, space: QuerySpace, page: Page, prefix: Prefix = None) -> FileList:
    # The space first (it authenticates): an unauthenticated request is 401 before its query is judged.
    rows, cursor = await service.list_files(ctx, space, page, prefix=prefix)
    return FileList.of(rows, cursor)


@flat.get("/{file_id}", response_model=FileOut, responses=errors(404))
async def get_flat(row: FlatFile) -> FileOut:
    return FileOut.of(row)


@flat.patch("/{file_id}", response_model=FileOut, responses=errors(400, 404))
async def update_flat(ctx: CtxDep, row: FlatFile, body: FileUpdate) -> FileOut:
    return FileOut.of(await service.update_file(ctx, row, body))


@flat.delete("/{file_id}", response_model=Deleted, responses=errors(404))
async def delete_flat(ctx: CtxDep, row: FlatFile) -> Deleted:
    return Deleted(id=str(await service.delete_file(ctx, row)))


@flat.get("/{file_id}/content", response_class=StreamingResponse, responses={**errors(404, 503), **openapi.download()})
async def content_flat(
    ctx: CtxDep, row: FlatFile, range_: RangeHeader = None, if_range: IfRangeHeader = None
) -> StreamingResponse:
    return await content.serve(make_store(ctx.settings), service.content(row), range_, if_range)


# --- runtime files (both shapes share the handlers below) ---------------------------------------


async def _stage(ctx, p, runtime, body: StageRequest, idem):
    async def make() -> StagedFile:
        return _staged(await runtime_files.stage(ctx, p, runtime, body))

    return await idem.once(make, body.model_dump(mode="json"))


async def _collect(ctx, runtime, body: CollectRequest, idem):
    async def make() -> CollectOut:
        return _collected(*await runtime_files.collect(ctx, runtime, body))

    return await idem.once(make, body.model_dump(mode="json"))


async def _upload(ctx, runtime, request: Request, idem):
    async def make() -> UploadOut:
        staged = await runtime_files.upload(ctx, runtime, _body(request))
        return UploadOut(file=FileOut.of(staged.file), staged=_staged(staged))

    return await idem.once(make, _upload_fingerprint(request))


@runtime_seed.get("", response_model=RuntimeFileList, responses=errors(400, 404))
async def runtime_files_seed(ctx: CtxDep, runtime: SeedRuntime, page: Page) -> RuntimeFileList:
    """Files in the runtime's file area (relative paths, regular files only)."""
    return _runtime_file_list(*await runtime_files.list_runtime_files(ctx, runtime, page))


@runtime_seed.post("/stage", status_code=201, response_model=StagedFile, responses=errors(400, 404, 409))
async def stage_seed(ctx: CtxDep, p: PrincipalDep, runtime: SeedRuntime, body: StageRequest, idem: IdempotencyDep):
    """Copy a storage file into the runtime; `path` is where the browser can read it."""
    return await _stage(ctx, p, runtime, body, idem)


@runtime_seed.post("/collect", status_code=201, response_model=CollectOut, responses=errors(400, 404, 409, 413))
async def collect_seed(ctx: CtxDep, runtime: SeedRuntime, body: CollectRequest, idem: IdempotencyDep):
    """Copy a runtime file into space storage; `artifact` also records it as an artifact of the active run."""
    return await _collect(ctx, runtime, body, idem)


@runtime_seed.post(
    "/upload",
    status_code=201,
    response_model=UploadOut,
    responses=errors(400, 404, 409, 413),
    openapi_extra=_multipart(**RUNTIME_FORM),
)
async def upload_runtime_seed(ctx: CtxDep, runtime: SeedRuntime, request: Request, idem: IdempotencyDep):
    """Upload into the runtime's space and stage it into the runtime in one call."""
    return await _upload(ctx, runtime, request, idem)


@runtime_flat.get("", response_model=RuntimeFileList, responses=errors(400, 404))
async def runtime_files_flat(ctx: CtxDep, runtime: FlatRuntime, page: Page) -> RuntimeFileList:
    return _runtime_file_list(*await runtime_files.list_runtime_files(ctx, runtime, page))


@runtime_flat.post("/stage", status_code=201, response_model=StagedFile, responses=errors(400, 404, 409))
async def stage_flat(ctx: CtxDep, p: PrincipalDep, runtime: FlatRuntime, body: StageRequest, idem: IdempotencyDep):
    return await _stage(ctx, p, runtime, body, idem)


@runtime_flat.post("/collect", status_code=201, response_model=CollectOut, responses=errors(400, 404, 409, 413))
async def collect_flat(ctx: CtxDep, runtime: FlatRuntime, body: CollectRequest, idem: IdempotencyDep):
    return await _collect(ctx, runtime, body, idem)


@runtime_flat.post(
    "/upload",
    status_code=201,
    response_model=UploadOut,
    responses=errors(400, 404, 409, 413),
    openapi_extra=_multipart(**RUNTIME_FORM),
)
async def upload_runtime_flat(ctx: CtxDep, runtime: FlatRuntime, request: Request, idem: IdempotencyDep):
    return await _upload(ctx, runtime, request, idem)


# --- run files ----------------------------------------------------------------------------------


@runs.get("", response_model=FileList, responses=errors(400, 404))
async def run_files(ctx: CtxDep, run: PathRun, page: Page) -> FileList:
    """Storage files the run produced: collected from its runtime or exported from it."""
    rows, cursor = await service.list_run_files(ctx, run, page)
    return FileList.of(rows, cursor)


@runs.post("/export", status_code=201, response_model=FileOut, responses=errors(400, 404, 409))
async def export(ctx: CtxDep, run: PathRun, idem: IdempotencyDep, body: ExportRequest | None = None):
    """ZIP the run's artifacts into space storage at `exports/<run id>/<name>`; also an `export` artifact."""
    body = body or ExportRequest()

    async def make() -> FileOut:
        return FileOut.of(await service.export_run(ctx, run, body))

    return await idem.once(make, body.model_dump(mode="json"))

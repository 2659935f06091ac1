"""A browser's own file area (downloads and uploads): list, upload, download, move, delete.

The logic and the path rules are app/browsing/files.py; these are the current generation's routes,
new paths (in /openapi.json).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.browsing import files
from app.core.schemas import errors
from app.current.browser_file_schemas import (
    BrowserFileDeleteOut,
    BrowserFileListOut,
    BrowserFileMoveIn,
    BrowserFileMoveOut,
    BrowserFileUploadOut,
    delete_out,
    list_out,
    move_out,
    upload_out,
)
from app.current.paths import PathBrowser
from app.files.service import UploadBody
from app.storage.http import content_disposition

router = APIRouter(prefix="/v1/browsers/{browser_id}/files", tags=["browser files"])
routers = (router,)

PATH_HELP = "A path in the browser's file area: /downloads/..., /workspace/... or /files/... (read only)"
PathQuery = Annotated[str, Query(min_length=1, max_length=4200, description=PATH_HELP)]
Flag = Literal["true", "false"]


def _actor(p) -> str:
    return str(p.key_id)


@router.get("", response_model=BrowserFileListOut, responses=errors(400, 404, 409))
async def list_files(
    ctx: CtxDep,
    p: PrincipalDep,
    runtime: PathBrowser,
    path: Annotated[
        str | None, Query(max_length=4200, description=PATH_HELP + "; / (the default) lists the top level")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=files.MAX_LIMIT)] = files.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=8400)] = None,
) -> BrowserFileListOut:
    """One directory of the browser's current run, by name."""
    return list_out(await files.list_dir(ctx, runtime, path, limit, cursor, _actor(p)))


@router.delete("", response_model=BrowserFileDeleteOut, responses=errors(400, 404, 409))
async def delete_file(
    ctx: CtxDep,
    p: PrincipalDep,
    runtime: PathBrowser,
    idem: IdempotencyDep,
    path: PathQuery,
    recursive: Flag = "false",
) -> Any:
    """Delete a file or directory (a non-empty directory needs recursive=true)."""

    async def make() -> BrowserFileDeleteOut:
        return delete_out(await files.delete(ctx, runtime, path, recursive == "true", _actor(p)))

    return await idem.once(make, {"path": path, "recursive": recursive, "browser": str(runtime.id)})


@router.get(
    "/content",
    response_class=StreamingResponse,
    responses={
        **errors(400, 404, 409, 413),
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    },
)
async def download_file(ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, path: PathQuery) -> StreamingResponse:
    """The file's bytes (at most 1 GiB); Content-Length and X-Content-SHA256 say its size and digest."""
    got = await files.download(ctx, runtime, path, _actor(p))
    headers = {
        "Content-Length": str(got.size),
        "Content-Disposition": content_disposition(got.name),
        "X-Content-SHA256": got.sha256,
        "Digest": f"sha-256={got.sha256}",
        "ETag": f'"{got.sha256}"',
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(got.chunks, media_type="application/octet-stream", headers=headers)


@router.put(
    "/content",
    response_model=BrowserFileUploadOut,
    responses=errors(400, 404, 409, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "additionalProperties": False,  # other form fields are refused (options are query parameters)
                    }
                }
            },
        }
    },
)
async def upload_file(
    ctx: CtxDep,
    p: PrincipalDep,
    runtime: PathBrowser,
    request: Request,
    idem: IdempotencyDep,
    path: PathQuery,
    overwrite: Flag = "false",
    create_parents: Annotated[Flag, Query(alias="createParents")] = "false",
) -> Any:
    """Upload the multipart `file` (at most 25 MiB) into /downloads or /workspace, written atomically."""
    body = UploadBody(
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        stream=request.stream(),
    )

    async def make() -> BrowserFileUploadOut:
        done = await files.upload(
            ctx,
            runtime,
            path,
            body,
            overwrite=overwrite == "true",
            create_parents=create_parents == "true",
            actor=_actor(p),
        )
        return upload_out(done)

    fingerprint = {"query": str(request.url.query), "length": request.headers.get("content-length")}
    return await idem.once(make, fingerprint)


@router.post("/move", response_model=BrowserFileMoveOut, responses=errors(400, 404, 409))
async def move_file(
    ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, body: BrowserFileMoveIn, idem: IdempotencyDep
) -> Any:
    """Move or rename a file or directory within /downloads and /workspace."""

    async def make() -> BrowserFileMoveOut:
        done = await files.move(ctx, runtime, body.source_path, body.destination_path, bool(body.overwrite), _actor(p))
        return move_out(done)

    return await idem.once(make, {**body.model_dump(mode="json"), "browser": str(runtime.id)})

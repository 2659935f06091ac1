"""`/v1/browser/extensions`: extensions an account uploads and its browsers load.

A create is either a multipart upload (`file`: a .crx or a zip of an unpacked extension, `name`) or
JSON `{url, name}` (the 0.3 client's `create`: the package is fetched from the URL). A browser names
extensions by these ids in its `extensions` (app/current/launch_checks.py checks them)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.errors import InvalidRequest
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.extension_schemas import (
    ExtensionDeletedOut,
    ExtensionFormat,
    ExtensionImport,
    ExtensionOut,
    ExtensionPage,
    ExtensionSource,
    ExtensionUpdate,
)
from app.current.schemas import Order
from app.extensions import service
from app.extensions.models import BrowserExtension
from app.files import multipart
from app.storage import ObjectStore

router = APIRouter(prefix="/v1/browser/extensions", tags=["browser extensions"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]


async def path_extension(ctx: CtxDep, p: PrincipalDep, extension_id: str) -> BrowserExtension:
    return await service.get(ctx, p, extension_id)


PathExtension = Annotated[BrowserExtension, Depends(path_extension)]


async def _count(ctx, row: BrowserExtension) -> int:
    return (await service.browser_counts(ctx, row.account_id)).get(str(row.id), 0)


_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A packed extension (.crx, CRX3) or a zip of an unpacked one",
                        },
                        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                    },
                    "additionalProperties": False,
                }
            },
            "application/json": {"schema": ExtensionImport.model_json_schema(by_alias=True)},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=ExtensionOut,
    responses=errors(400, 409, 413),
    openapi_extra=_CREATE_BODY,
)
async def create_extension(ctx: CtxDep, p: PrincipalDep, request: Request, idem: IdempotencyDep) -> ExtensionOut:
    """Upload an extension (multipart `file`, `name`) or import one (JSON `url`, `name`). An archive that
    is not an extension is 400 `browser_extension.invalid_package`; limits: 64 MiB packed, 5000
    entries, 256 MiB unpacked (`browser_extension.archive_limit_exceeded`)."""
    content_type = (request.headers.get("content-type") or "").lower()
    if content_type.startswith("multipart/form-data"):

        async def receive(store: ObjectStore, key: str, max_bytes: int) -> dict[str, str]:
            received = await multipart.receive(
                store,
                key,
                content_type=request.headers.get("content-type"),
                content_length=request.headers.get("content-length"),
                body=request.stream(),
                max_file_bytes=max_bytes,
            )
            return received.fields

        async def upload() -> ExtensionOut:
            return ExtensionOut.of(await service.upload(ctx, p, receive))

        fingerprint = {"query": str(request.url.query), "length": request.headers.get("content-length")}
        return await idem.once(upload, fingerprint)
    if not content_type.startswith("application/json"):
        raise InvalidRequest(
            "Send the extension as multipart/form-data with a `file` part (.crx or .zip), or JSON with a `url`",
            code="browser_extension.file_required",
            details={"field": "file"},
        )
    raw = await request.body()
    try:
        parsed = ExtensionImport.model_validate(json.loads(raw))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise RequestValidationError(exc.errors(include_url=False)) from None
        raise InvalidRequest("The body is not valid JSON") from None

    async def fetch() -> ExtensionOut:
        return ExtensionOut.of(await service.import_url(ctx, p, parsed.url, parsed.name))

    return await idem.once(fetch, parsed.model_dump(mode="json"))


@router.get("", response_model=ExtensionPage, responses=errors(400))
async def list_extensions(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
    format: ExtensionFormat | None = None,
    source: ExtensionSource | None = None,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
) -> ExtensionPage:
    flt = service.Filters(q=q, format=format, source=source)
    rows, cursor = await service.list_extensions(ctx, p, page, flt, newest_first=order == "desc")
    counts = await service.browser_counts(ctx, p.account_id) if rows else {}
    return ExtensionPage(
        data=[ExtensionOut.of(r, counts.get(str(r.id), 0)) for r in rows],
        has_more=cursor is not None,
        next_cursor=cursor,
    )


@router.get("/{extension_id}", response_model=ExtensionOut, responses=errors(404))
async def get_extension(ctx: CtxDep, row: PathExtension) -> ExtensionOut:
    return ExtensionOut.of(row, await _count(ctx, row))


@router.patch("/{extension_id}", response_model=ExtensionOut, responses=errors(400, 404, 409))
async def update_extension(
    ctx: CtxDep, row: PathExtension, body: ExtensionUpdate, idem: IdempotencyDep
) -> ExtensionOut:
    """Rename it (`name`); the package itself cannot change: upload a new one."""

    async def make() -> ExtensionOut:
        updated = await service.rename(ctx, row, body.name) if body.name is not None else row
        return ExtensionOut.of(updated, await _count(ctx, updated))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{extension_id}", response_model=ExtensionDeletedOut, responses=errors(404, 409))
async def delete_extension(ctx: CtxDep, row: PathExtension, idem: IdempotencyDep) -> ExtensionDeletedOut:
    """Refused with 409 `browser_extension.in_use` while a running browser loads it."""

    async def make() -> ExtensionDeletedOut:
        return ExtensionDeletedOut(id=str(await service.delete(ctx, row)))

    return await idem.once(make, {})

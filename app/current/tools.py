"""`/v1/tools`: the built-in tool catalogue offered here and the account's custom webhook tools (see
`app/tools/service.py`). Tool calls (`/v1/tools/{ref}/calls`, `/v1/tool-calls`) live in `tool_calls.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.paths import ScopeSpace, SpaceHeader, chosen_space
from app.current.schemas import Order
from app.current.tool_schemas import (
    BuiltinToolOut,
    CustomToolOut,
    ToolCreate,
    ToolDeletedOut,
    ToolPage,
    ToolUpdate,
    tool_out,
)
from app.spaces import service as spaces
from app.tools import service
from app.tools.catalog import BuiltinTool
from app.tools.models import CustomTool

router = APIRouter(prefix="/v1/tools", tags=["tools"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]
ToolRef = Annotated[
    str, Path(min_length=1, max_length=200, description="A built-in's name, or a custom tool's id or name")
]


async def path_tool(ctx: CtxDep, p: PrincipalDep, tool_ref: ToolRef, space: ScopeSpace) -> BuiltinTool | CustomTool:
    return await service.get(ctx, p, tool_ref, space)


async def path_custom_tool(ctx: CtxDep, p: PrincipalDep, tool_ref: ToolRef, space: ScopeSpace) -> CustomTool:
    """A custom tool to change: a built-in is 403 `tool.builtin_immutable`."""
    found = await service.get(ctx, p, tool_ref, space)
    if isinstance(found, BuiltinTool):
        raise service.builtin_immutable(found.name)
    return found


PathTool = Annotated[BuiltinTool | CustomTool, Depends(path_tool)]
PathCustomTool = Annotated[CustomTool, Depends(path_custom_tool)]


@router.get("", response_model=ToolPage, responses=errors(400, 404))
async def list_tools(
    ctx: CtxDep, p: PrincipalDep, page: Page, space: ScopeSpace, order: OrderQuery = "desc"
) -> ToolPage:
    """The built-in tools offered here (not the refused ones: captcha.*, computer.use, run.files.*, ...)
    and the live custom tools of the space (of every space without one)."""
    items, cursor = await service.list_tools(ctx, p, space, page, newest_first=order == "desc")
    return ToolPage(data=[tool_out(t) for t in items], has_more=cursor is not None, next_cursor=cursor)


@router.post("", status_code=201, response_model=BuiltinToolOut | CustomToolOut, responses=errors(400, 404, 409))
async def create_tool(
    ctx: CtxDep, p: PrincipalDep, body: ToolCreate, idem: IdempotencyDep, header_space: SpaceHeader = None
) -> CustomToolOut:
    """A webhook tool: calls are POSTed to `implementation.url` (signed the standardwebhooks way, with
    the `authSecret` vault secret when given, else a key generated here and kept sealed) and must answer
    within `timeoutMs` with JSON valid against `outputSchema`. `inputSchema` and `outputSchema` must be
    JSON Schemas of objects (400 `tool.schema_invalid`); a name is unique among the space's tools (409
    `tool.name_conflict`); code and workflow tools are 400 `tool.implementation_unsupported`."""
    space = await spaces.resolve(ctx, p, chosen_space(body.space_id, header_space))

    async def make() -> CustomToolOut:
        return CustomToolOut.of(await service.create(ctx, p, space, body.spec()))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{tool_ref}", response_model=BuiltinToolOut | CustomToolOut, responses=errors(404, 409))
async def get_tool(tool: PathTool) -> BuiltinToolOut | CustomToolOut:
    return tool_out(tool)


@router.patch("/{tool_ref}", response_model=CustomToolOut, responses=errors(400, 403, 404, 409))
async def update_tool(ctx: CtxDep, tool: PathCustomTool, body: ToolUpdate, idem: IdempotencyDep) -> CustomToolOut:
    """Changes apply to future calls. `currentRevisionId` must be the tool's current one (409
    `tool.revision_conflict` otherwise). Built-ins are 403 `tool.builtin_immutable`."""

    async def make() -> CustomToolOut:
        return CustomToolOut.of(await service.update(ctx, tool, body.spec(), body.current_revision_id))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{tool_ref}", response_model=ToolDeletedOut, responses=errors(403, 404, 409))
async def delete_tool(ctx: CtxDep, tool: PathCustomTool, idem: IdempotencyDep) -> ToolDeletedOut:
    """Archives the tool: its calls stay readable; agent versions naming it fail their next task with
    `tool.not_found`. Built-ins are 403 `tool.builtin_immutable`."""

    async def make() -> ToolDeletedOut:
        return ToolDeletedOut(id=str(await service.delete(ctx, tool)))

    return await idem.once(make, {})

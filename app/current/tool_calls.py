"""`/v1/tool-calls`: durable records of tool executions (a task's and a person's): list, get (optionally
waiting), cancel, respond (a person answers a suspended `human.request`), result; and
`POST /v1/tools/{toolRef}/calls`: a person calls a tool directly (a browser tool in `runtimeId`, whose
controller it takes for the call)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.errors import InvalidRequest
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.paths import ScopeSpace
from app.current.schemas import Order
from app.current.tool_call_schemas import MAX_WAIT_SECONDS, ToolCallCreate, ToolCallOut, ToolCallPage
from app.runtimes import service as runtimes
from app.spaces import service as spaces
from app.toolcalls import direct, service
from app.toolcalls.models import ToolCall
from app.tools import service as tools
from app.vault import service as vault

router = APIRouter(prefix="/v1/tool-calls", tags=["tool-calls"])
calls_router = APIRouter(prefix="/v1/tools", tags=["tools"])
routers = (router, calls_router)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]
IdQuery = Annotated[str | None, Query(max_length=64)]
Wait = Annotated[
    int, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the call to finish or ask for input")
]
StatusQuery = Literal["queued", "running", "awaiting_input", "succeeded", "failed", "canceled", "unknown"]


async def path_tool_call(ctx: CtxDep, p: PrincipalDep, tool_call_id: str) -> ToolCall:
    return await service.get(ctx, p.account_id, tool_call_id)


PathToolCall = Annotated[ToolCall, Depends(path_tool_call)]


@router.get("", response_model=ToolCallPage, responses=errors(400, 404))
async def list_tool_calls(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    runtime_id: Annotated[str | None, Query(alias="runtimeId", max_length=64)] = None,
    run_id: Annotated[str | None, Query(alias="runId", max_length=64)] = None,
    task_id: Annotated[str | None, Query(alias="taskId", max_length=64)] = None,
    tool: Annotated[
        str | None, Query(max_length=200, description="A built-in's name or a custom tool's id or name")
    ] = None,
    status: StatusQuery | None = None,
    order: OrderQuery = "desc",
) -> ToolCallPage:
    """The account's tool calls (of the space `spaceId` names), newest first by default. `unknown` is a
    status no call of this server has (an outcome it cannot tell is recorded as failed)."""
    if status == "unknown":
        return ToolCallPage(data=[], has_more=False)
    rows, cursor = await service.list_for(
        ctx,
        p.account_id,
        page,
        newest_first=order == "desc",
        space_id=space.id if space else None,
        task_id=task_id,
        run_id=run_id,
        runtime_id=runtime_id,
        tool=tool,
        status=status,
    )
    return ToolCallPage(data=[ToolCallOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get("/{tool_call_id}", response_model=ToolCallOut, responses=errors(404))
async def get_tool_call(ctx: CtxDep, row: PathToolCall, wait: Wait = 0) -> ToolCallOut:
    """The call; with `wait`, once it has finished or asks for input (or after `wait` seconds)."""
    return ToolCallOut.of(await service.wait(ctx, row, wait) if wait else row)


@router.post("/{tool_call_id}/cancel", response_model=ToolCallOut, responses=errors(404, 409))
async def cancel_tool_call(ctx: CtxDep, row: PathToolCall, idem: IdempotencyDep) -> ToolCallOut:
    """An active call ends `canceled` and its executor stops (a webhook request is aborted, a
    human.request stops waiting). Cancelling a cancelled call answers it as it is; a call that already
    succeeded or failed is 409 `tool_call.state_invalid`."""

    async def make() -> ToolCallOut:
        return ToolCallOut.of(await service.cancel(ctx, row))

    return await idem.once(make, {})


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest(
            "The body is the answer: any JSON value valid against the request's schema",
            code="tool_call.response_invalid",
            details={"fields": [{"field": "body", "in": "body", "message": "required", "type": "missing"}]},
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "The body is not JSON",
            code="request.invalid",
            details={"fields": [{"field": "body", "in": "body", "message": "not JSON", "type": "invalid"}]},
        ) from None


@router.post(
    "/{tool_call_id}/respond",
    response_model=ToolCallOut,
    responses=errors(400, 404, 409),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
)
async def respond_tool_call(
    ctx: CtxDep, p: PrincipalDep, row: PathToolCall, request: Request, idem: IdempotencyDep
) -> ToolCallOut:
    """Answer a call waiting for input (`awaiting_input`): the body is the answer, checked against the
    request's schema (400 `tool_call.response_invalid`). 409 `tool_call.input_already_responded` once an
    answer was taken, `tool_call.input_expired` after its expiry, `tool_call.state_invalid` for a call
    that is not waiting for input."""
    value = await _json_body(request)

    async def make() -> ToolCallOut:
        return ToolCallOut.of(await service.respond(ctx, row, value, vault.person(p)))

    return await idem.once(make, {"value": value})


@router.get(
    "/{tool_call_id}/result",
    responses={
        200: {
            "description": "The tool's JSON output (succeeded), else the ToolCall",
            "content": {"application/json": {"schema": {}}},
        },
        **errors(404),
    },
)
async def tool_call_result(ctx: CtxDep, row: PathToolCall, wait: Wait = 0) -> Any:
    """A succeeded call's result (the tool's JSON output); any other call's current state (the
    ToolCall), so a caller polls again or reads its error."""
    if wait:
        row = await service.wait(ctx, row, wait)
    if row.status == "succeeded":
        return row.result
    return ToolCallOut.of(row).model_dump(mode="json", by_alias=True)


@calls_router.post("/{tool_ref}/calls", status_code=201, response_model=ToolCallOut, responses=errors(400, 404, 409))
async def create_tool_call(
    ctx: CtxDep,
    p: PrincipalDep,
    tool_ref: str,
    body: ToolCallCreate,
    space: ScopeSpace,
    idem: IdempotencyDep,
    wait: Wait = 0,
) -> ToolCallOut:
    """Call a tool now, as a person (`callerType: api`): a built-in's name or a custom tool's id or name
    (in `spaceId`'s space, else the browser's, else the default space). A browser tool needs `runtimeId`
    (a running browser): its controller is taken for the call (409 `browser.control_held` while a CDP
    client, a person or a task holds it, nothing recorded). With `wait`, the answer comes once the call
    finished or asks for input, or after `wait` seconds, still running."""
    runtime = await runtimes.find(ctx, p, body.runtime_id, space) if body.runtime_id else None
    if space is None:
        space = await spaces.get(ctx, p, str(runtime.space_id)) if runtime else await spaces.get(ctx, p, "default")
    tool = await tools.resolve(ctx, p.account_id, tool_ref, space_id=space.id)
    if tool.needs_browser and runtime is None:
        raise InvalidRequest(
            f"{tool.name} acts in a browser: name it with runtimeId",
            code="tool.runtime_unavailable",
            details={
                "fields": [{"field": "runtimeId", "in": "body", "message": "required for this tool", "type": "missing"}]
            },
        )

    async def make() -> ToolCallOut:
        row = await direct.start(
            ctx,
            account_id=p.account_id,
            space_id=space.id,
            tool=tool,
            input=body.input,
            runtime=runtime,
            actor=vault.person(p),
        )
        return ToolCallOut.of(await service.wait(ctx, row, wait) if wait else row)

    return await idem.once(make, body.model_dump(mode="json"))

"""`/v1/tasks`: run an agent on an input in a conversation (app/tasks/service.py), read it, wait on
it (`wait` seconds, ending when it finishes or asks for input), cancel it, answer its input request or
steer it while it runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.ids import parse_uuid
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.paths import ScopeSpace, SpaceHeader, chosen_space
from app.current.schemas import Order, page_model
from app.current.task_schemas import STATUS_ROWS, TaskCreate, TaskInputBody, TaskOut, TaskStatus
from app.tasks import service
from app.tasks.paths import PathTask

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
TaskPage = page_model(TaskOut)
Wait = Annotated[int, Query(ge=0, le=60, description="Seconds to wait for the task to finish or ask for input")]
Ref = Annotated[str | None, Query(max_length=200)]


@router.get("", response_model=TaskPage, responses=errors(400, 404))
async def list_tasks(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    agent: Ref = None,
    conversation: Ref = None,
    status: TaskStatus | None = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
) -> TaskPage:
    """Tasks of the account (or the scoped space), by agent (id or name), conversation, status and time."""
    agent_ids = await service.agent_ids_for(ctx, p, agent, space) if agent is not None else None
    conversation_id = parse_uuid(conversation) if conversation is not None else None
    if agent_ids == [] or (conversation is not None and conversation_id is None):
        return TaskPage(data=[], has_more=False)
    rows, cursor = await service.list_for(
        ctx,
        p,
        page,
        agent_id=agent_ids,
        conversation_id=conversation_id,
        status=STATUS_ROWS[status] if status else None,
        since=created_from,
        until=created_to,
        space_id=space.id if space else None,
        newest_first=order == "desc",
    )
    return TaskPage(data=[TaskOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.post("", status_code=202, response_model=TaskOut, responses=errors(400, 403, 404, 409, 429))
async def create_task(
    ctx: CtxDep, p: PrincipalDep, body: TaskCreate, idem: IdempotencyDep, header_space: SpaceHeader = None
) -> TaskOut:
    """Queue a task: the agent (id or name; its promoted version unless `version`) on `input`, in a new
    conversation or the idle one named (409 `conversation.busy` while a task runs in it). An invalid
    `outputSchema` is 400; `metadata.browserId` names a running browser of the space the task drives
    under its controller lock (409 `browser.control_held` while another holds it)."""
    spec = service.TaskSpec(
        agent=body.agent,
        input=body.model_dump(mode="json")["input"],
        version=body.version,
        conversation=body.conversation,
        metadata=body.metadata,
        output_schema=body.output_schema,
        space_ref=chosen_space(body.space_id, header_space),
    )

    async def make() -> TaskOut:
        return TaskOut.of(await service.create(ctx, p, spec))

    return await idem.once(make, {"body": body.model_dump(mode="json"), "space": header_space})


@router.get("/{task_id}", response_model=TaskOut, responses=errors(404))
async def get_task(ctx: CtxDep, row: PathTask, wait: Wait = 0) -> TaskOut:
    """The task; with `wait`, once it finishes or asks for input (or when the seconds are up)."""
    if wait:
        row = await service.wait(ctx, row, wait * 1000)
    return TaskOut.of(row)


@router.post("/{task_id}/cancel", response_model=TaskOut, responses=errors(404, 409))
async def cancel_task(ctx: CtxDep, row: PathTask, idem: IdempotencyDep) -> TaskOut:
    """A queued task ends canceled at once; a running one is `running` until it stops before its next
    step (a pending input request fails). A task that already succeeded or failed is 409 `task.not_running`."""

    async def make() -> TaskOut:
        return TaskOut.of(await service.cancel(ctx, row))

    return await idem.once(make, {})


@router.post("/{task_id}/input", response_model=TaskOut, responses=errors(400, 404, 409))
async def task_input(ctx: CtxDep, p: PrincipalDep, row: PathTask, body: TaskInputBody, idem: IdempotencyDep) -> TaskOut:
    """With `requestId`: answer the task's pending input request (validated against its schema; 409
    `task.input_request_mismatch`, `task.input_not_requested`, `tool_call.input_expired`). Without:
    a message to the queued or running task, read by the agent at its next step."""

    async def make() -> TaskOut:
        if body.request_id is not None:
            return TaskOut.of(await service.answer(ctx, p, row, body.request_id, body.input))
        return TaskOut.of(await service.steer(ctx, row, body.input))

    return await idem.once(make, body.model_dump(mode="json"))

"""`/v1/conversations`: the transcripts tasks run in. A conversation is `active` while a task runs in
it (`activeTaskId`) and `idle` otherwise; only an idle one can be deleted (409 `conversation.busy`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.conversation_schemas import ConversationDeletedOut, ConversationOut, ConversationUpdate
from app.current.paths import ScopeSpace
from app.current.schemas import Order, page_model
from app.tasks import conversations, service
from app.tasks.paths import PathConversation

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
ConversationPage = page_model(ConversationOut)


@router.get("", response_model=ConversationPage, responses=errors(400, 404))
async def list_conversations(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
) -> ConversationPage:
    agent_ids = await service.agent_ids_for(ctx, p, agent, space) if agent is not None else None
    if agent_ids == []:
        return ConversationPage(data=[], has_more=False)
    rows, cursor = await conversations.list_for(
        ctx,
        p,
        page,
        space_id=space.id if space else None,
        agent_ids=agent_ids,
        since=created_from,
        until=created_to,
        newest_first=order == "desc",
    )
    return ConversationPage(data=[ConversationOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get("/{conversation_id}", response_model=ConversationOut, responses=errors(404))
async def get_conversation(row: PathConversation) -> ConversationOut:
    return ConversationOut.of(row)


@router.patch("/{conversation_id}", response_model=ConversationOut, responses=errors(400, 404, 409))
async def update_conversation(
    ctx: CtxDep, row: PathConversation, body: ConversationUpdate, idem: IdempotencyDep
) -> ConversationOut:
    """Fields given are changed (`null` clears them)."""
    changes = body.model_fields_set
    values = {k: getattr(body, k) for k in ("title", "metadata") if k in changes}

    async def make() -> ConversationOut:
        return ConversationOut.of(await conversations.update_row(ctx, row, **values))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{conversation_id}", response_model=ConversationDeletedOut, responses=errors(404, 409))
async def delete_conversation(ctx: CtxDep, row: PathConversation, idem: IdempotencyDep) -> ConversationDeletedOut:
    """Only an idle conversation (409 `conversation.busy` while a task runs in it); its tasks stay readable."""

    async def make() -> ConversationDeletedOut:
        return ConversationDeletedOut(id=str(await conversations.delete_row(ctx, row)))

    return await idem.once(make, {})

"""Conversations: the transcript tasks run in. One task at a time (`active_task_id`); a busy one is
409 `conversation.busy` for a new task and for a delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.tasks.models import Conversation, ConversationMessage

UNSET: Any = object()


def not_found(conversation_id: object) -> NotFound:
    return NotFound(
        "Conversation not found", code="conversation.not_found", details={"conversationId": str(conversation_id)}
    )


def busy(conversation: Conversation) -> Conflict:
    return Conflict(
        "A task is running in this conversation",
        code="conversation.busy",
        details={"conversationId": str(conversation.id), "activeTaskId": str(conversation.active_task_id)},
    )


async def get(ctx: AppContext, p: Principal, conversation_id: str) -> Conversation:
    row = await get_owned(ctx.db, Conversation, conversation_id, p.account_id)
    if row is None:
        raise not_found(conversation_id)
    return row


async def list_for(
    ctx: AppContext,
    p: Principal,
    page: PageParams,
    *,
    space_id: uuid.UUID | None = None,
    agent_ids: list[uuid.UUID] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = True,
) -> tuple[list[Conversation], str | None]:
    stmt = select(Conversation).where(Conversation.account_id == p.account_id)
    if space_id is not None:
        stmt = stmt.where(Conversation.space_id == space_id)
    if agent_ids is not None:
        stmt = stmt.where(Conversation.agent_id.in_(agent_ids))
    if since is not None:
        stmt = stmt.where(Conversation.created_at >= since)
    if until is not None:
        stmt = stmt.where(Conversation.created_at < until)
    return await fetch_by_id(ctx.db, stmt, Conversation.id, page, newest_first=newest_first)


async def update_row(ctx: AppContext, row: Conversation, *, title: Any = UNSET, metadata: Any = UNSET) -> Conversation:
    async with ctx.db.transaction() as s:
        row = await s.get(Conversation, row.id, with_for_update=True)
        if title is not UNSET:
            row.title = title
        if metadata is not UNSET:
            row.conversation_metadata = metadata
        row.updated_at = clock.now()
    return row


async def delete_row(ctx: AppContext, row: Conversation) -> uuid.UUID:
    """Only an idle conversation: its transcript goes; its tasks stay readable."""
    async with ctx.db.transaction() as s:
        fresh = await s.get(Conversation, row.id, with_for_update=True, populate_existing=True)
        if fresh is None:
            raise not_found(row.id)
        if fresh.active_task_id is not None:
            raise busy(fresh)
        await s.execute(delete(Conversation).where(Conversation.id == row.id))
    return row.id


async def open_for_task(
    s: AsyncSession,
    account_id: uuid.UUID,
    space_id: uuid.UUID,
    agent_id: uuid.UUID,
    existing: Conversation | None,
    task_id: uuid.UUID,
) -> Conversation:
    """In the task's creating transaction: a new conversation, or the existing one made busy with it
    (409 `conversation.busy` when another task is active in it)."""
    now = clock.now()
    if existing is None:
        conv = Conversation(
            id=ids.new_id(),
            account_id=account_id,
            space_id=space_id,
            agent_id=agent_id,
            title=None,
            conversation_metadata=None,
            active_task_id=task_id,
            created_at=now,
            updated_at=now,
        )
        s.add(conv)
        await s.flush()
        return conv
    taken = (
        await s.execute(
            update(Conversation)
            .where(Conversation.id == existing.id, Conversation.active_task_id.is_(None))
            .values(active_task_id=task_id, updated_at=now)
        )
    ).rowcount
    conv = await s.get(Conversation, existing.id, populate_existing=True)
    if conv is None:
        raise not_found(existing.id)
    if not taken:
        raise busy(conv)
    return conv


async def release(s: AsyncSession, conversation_id: uuid.UUID | None, task_id: uuid.UUID) -> None:
    """The task ended: its conversation is idle again (if it was still the active one)."""
    if conversation_id is None:
        return
    await s.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.active_task_id == task_id)
        .values(active_task_id=None, updated_at=clock.now())
    )


async def append(
    s: AsyncSession,
    conversation_id: uuid.UUID,
    task_id: uuid.UUID | None,
    kind: str,
    content: Any,
    *,
    pending: bool = False,
) -> ConversationMessage:
    last = (
        await s.execute(
            select(func.max(ConversationMessage.seq)).where(ConversationMessage.conversation_id == conversation_id)
        )
    ).scalar_one()
    message = ConversationMessage(
        id=ids.new_id(),
        conversation_id=conversation_id,
        task_id=task_id,
        seq=(last or 0) + 1,
        kind=kind,
        content=content,
        pending=pending,
        created_at=clock.now(),
    )
    s.add(message)
    return message


async def append_many(
    s: AsyncSession, conversation_id: uuid.UUID, task_id: uuid.UUID, messages: list[tuple[str, Any]]
) -> None:
    """A step's messages in order, numbered with one look at the last number."""
    if not messages:
        return
    last = (
        await s.execute(
            select(func.max(ConversationMessage.seq)).where(ConversationMessage.conversation_id == conversation_id)
        )
    ).scalar_one() or 0
    now = clock.now()
    for offset, (kind, content) in enumerate(messages, start=1):
        s.add(
            ConversationMessage(
                id=ids.new_id(),
                conversation_id=conversation_id,
                task_id=task_id,
                seq=last + offset,
                kind=kind,
                content=content,
                pending=False,
                created_at=now,
            )
        )


async def take_steering_in(s: AsyncSession, conversation_id: uuid.UUID, task_id: uuid.UUID) -> list[Any]:
    """In the caller's transaction: the steering messages sent to the task since the last look (then
    no longer pending)."""
    rows = list(
        (
            await s.execute(
                select(ConversationMessage)
                .where(
                    ConversationMessage.conversation_id == conversation_id,
                    ConversationMessage.task_id == task_id,
                    ConversationMessage.pending.is_(True),
                )
                .order_by(ConversationMessage.seq)
            )
        ).scalars()
    )
    if rows:
        await s.execute(
            update(ConversationMessage).where(ConversationMessage.id.in_([r.id for r in rows])).values(pending=False)
        )
    return [r.content.get("input") for r in rows]


async def transcript(ctx: AppContext, conversation_id: uuid.UUID, before_task: uuid.UUID) -> list[ConversationMessage]:
    """The messages of the tasks before `before_task` (what continuing the conversation feeds the model)."""
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(ConversationMessage)
                .where(
                    ConversationMessage.conversation_id == conversation_id,
                    ConversationMessage.pending.is_(False),
                    (ConversationMessage.task_id != before_task) | ConversationMessage.task_id.is_(None),
                )
                .order_by(ConversationMessage.seq)
            )
        ).scalars()
        return list(rows)


async def take_steering(ctx: AppContext, conversation_id: uuid.UUID, task_id: uuid.UUID) -> list[Any]:
    """The steering messages sent to the task since the runner last looked (then no longer pending)."""
    pending = (
        select(ConversationMessage.id)
        .where(
            ConversationMessage.conversation_id == conversation_id,
            ConversationMessage.task_id == task_id,
            ConversationMessage.pending.is_(True),
        )
        .limit(1)
    )
    async with ctx.db.read() as s:
        if (await s.execute(pending)).first() is None:
            return []  # the usual case: one read, no write
    async with ctx.db.transaction() as s:
        return await take_steering_in(s, conversation_id, task_id)

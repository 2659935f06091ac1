"""Path objects of tasks and conversations: an unknown id, or another account's, is 404 before the handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.runs.command_models import Command
from app.tasks import conversations, service
from app.tasks.models import Conversation


async def path_task(ctx: CtxDep, p: PrincipalDep, task_id: str) -> Command:
    return await service.get(ctx, p, task_id)


async def path_conversation(ctx: CtxDep, p: PrincipalDep, conversation_id: str) -> Conversation:
    return await conversations.get(ctx, p, conversation_id)


PathTask = Annotated[Command, Depends(path_task)]
PathConversation = Annotated[Conversation, Depends(path_conversation)]

"""`/v1/conversations` wire models (the 0.3 wheel's ConversationRecord, ConversationDeleteResponse)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.tasks.models import Conversation


class ConversationOut(WireModel):
    object: Literal["conversation"] = "conversation"
    id: str
    space_id: str
    status: Literal["idle", "active"]
    active_task_id: str | None = None
    title: str | None = None
    metadata: JsonObject | None = None
    sandbox_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: Conversation) -> ConversationOut:
        return cls(
            id=str(row.id),
            space_id=str(row.space_id),
            status="active" if row.active_task_id else "idle",
            active_task_id=str(row.active_task_id) if row.active_task_id else None,
            title=row.title,
            metadata=row.conversation_metadata,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ConversationUpdate(RequestModel):
    title: str | None = Field(default=None, max_length=500)
    metadata: JsonObject | None = None


class ConversationDeletedOut(WireModel):
    id: str
    deleted: bool = True

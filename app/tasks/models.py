"""Tables of tasks: a task itself is a row of `commands` (app/runs/command_models.py); a conversation
is the transcript tasks run in, its messages in order (user input, the model's turns, tool results,
and steering messages a person sent to a running task)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_account_agent", "account_id", "agent_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    # The agent of its first task (a conversation continues with that agent's tasks).
    agent_id: Mapped[uuid.UUID | None]
    title: Mapped[str | None] = mapped_column(String(500))
    conversation_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    # The task running in it now (queued, running or awaiting input); None when idle.
    active_task_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationMessage(Base):
    """One message of a transcript, in the runner's neutral LLM form (`content`, see app/ai/llm.py).
    `kind` says what it is: input (a task's input), assistant, tool (a tool's result), output (a
    task's final output), steer (a person's message to a running task; `pending` until the runner
    reads it at its next step)."""

    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_conv_seq", "conversation_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID | None]
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[Any] = mapped_column(JSONType)
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]

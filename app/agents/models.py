"""Agents and their immutable versions.

An agent row holds what is not behaviour (name, metadata, which version is promoted); each behaviour
change appends an `agent_versions` row, never edited afterwards. Deleting archives the agent
(`archived_at`): its versions and the tasks that ran them stay readable, and its name is free again.
The two built-in agents of a space (`browser`, `browser-use`) are rows too (`builtin`), made the first
time a space's agents are looked at, with ids derived from the space and the name."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        # A name is unique among a space's live agents.
        Index(
            "uq_agents_live_name",
            "space_id",
            "name",
            unique=True,
            postgresql_where=text("archived_at IS NULL"),
            sqlite_where=text("archived_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    promoted_version: Mapped[int] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer)
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AgentVersion(Base):
    """One immutable definition of an agent's behaviour. `engine`: "stagehand" (the task runner's own
    tool loop) or "browser-use" (the browser-use engine)."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(300))
    instructions: Mapped[str] = mapped_column(Text)
    tools: Mapped[list[str]] = mapped_column(JSONType)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONType)
    memory: Mapped[str] = mapped_column(String(16))
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    engine: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]

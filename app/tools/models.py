"""Custom tools: the account's own callable tools, one space each. Only webhook tools are kept (code and
workflow implementations are refused at the API). Every change gets a new `revision_id` (the wire's
`currentRevisionId`, which an update must name). Deleting archives the row (`archived_at`): tool call
records that name it stay readable and its name is free again. The signing secret is generated at
create and kept sealed under the server key (`signing_secret_sealed`); `auth_secret` is the caller's
optional vault reference (`secret:<path>[#field]`) used to sign instead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class CustomTool(Base):
    __tablename__ = "custom_tools"
    __table_args__ = (
        Index(
            "uq_custom_tools_live_name",
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
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # "webhook"
    url: Mapped[str] = mapped_column(String(2048))
    timeout_ms: Mapped[int] = mapped_column(Integer)
    auth_secret: Mapped[str | None] = mapped_column(String(600))
    signing_secret_sealed: Mapped[str] = mapped_column(Text)
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    runtime_types: Mapped[list[str]] = mapped_column(JSONType)
    revision_id: Mapped[uuid.UUID]
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

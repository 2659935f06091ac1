from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class ViewScopeKind:
    SPACE = "space"
    BROWSER = "browser"
    RUN = "run"


class View(Base):
    """A scoped, expiring, revocable link to one page showing a space's browsers, a browser or a run.

    The link's bearer token is shown once; only its keyed digest is kept (`app/views/tokens.py`)."""

    __tablename__ = "views"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(16))  # ViewScopeKind
    # The browser of a browser scope (and the run's browser for a run scope).
    runtime_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # A space scope narrowed to some of its browsers (ids as strings), or None for all of them.
    runtime_ids: Mapped[list[Any] | None] = mapped_column(JSONType)
    # What the page may show: {"events", "recordings", "trace", "bell"} as booleans.
    components: Mapped[dict[str, Any]]
    control: Mapped[bool] = mapped_column(Boolean)
    # {"mode": "hosted"} or {"mode": "embedded", "allowedOrigins": [...]}.
    presentation: Mapped[dict[str, Any]]
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ViewViewer(Base):
    """A live or replay viewer link minted for a view's page, so revoking the view closes it too."""

    __tablename__ = "view_viewers"

    viewer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("viewers.id", ondelete="CASCADE"), primary_key=True)
    view_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("views.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))

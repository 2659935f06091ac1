from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class ConnectionStatus:
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CLOSED = "closed"  # the run ended under it


class ConnectionScope:
    LEASE = "lease"  # seed: POST .../connections, a TTL, the URL shown once
    RUN = "run"  # flat: minted by start, valid while its run is active


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (Index("ix_connections_status_expires", "status", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    runtime_id: Mapped[uuid.UUID] = mapped_column(index=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    # The controller-lock token this lease holds (holder and fencing number).
    lock_token: Mapped[str] = mapped_column(String(200))
    ttl_seconds: Mapped[int | None]
    options: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    last_attached_at: Mapped[datetime | None]
    # The API key whose request made the lease (null: made by the server itself, or before keys were
    # recorded): revoking the key revokes the lease and closes its sockets (app/connections/revocation.py).
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(index=True)

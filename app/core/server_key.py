"""The server's signing key: BCTRL_SECRET_KEY when set, else one generated on first start and kept
in the database so that every server process sharing the database derives the same values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.core.db import Base, Database

_NAME = "signing"


class ServerKey(Base):
    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


async def load(db: Database, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    async with db.transaction() as s:
        row = await s.get(ServerKey, _NAME)
    if row is None:
        try:
            async with db.transaction() as s:
                s.add(ServerKey(name=_NAME, value=secrets.token_urlsafe(48), created_at=clock.now()))
        except IntegrityError:
            pass  # another process created it first
        async with db.transaction() as s:
            row = (await s.execute(select(ServerKey).where(ServerKey.name == _NAME))).scalar_one()
    return row.value.encode()


def derive(key: bytes, purpose: str, subject: str) -> str:
    """A stable secret for (purpose, subject): recomputable by the server, unguessable without the key."""
    digest = hmac.new(key, f"{purpose}:{subject}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class BrowserExtension(Base):
    """An extension an account uploaded (or imported from a URL), kept checked and normalized in the
    object store (`object_key`: a zip of its files, the manifest carrying its key); browsers that name
    it in their launch options load an unpacked copy (app/extensions/service.py)."""

    __tablename__ = "browser_extensions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    manifest_version: Mapped[int] = mapped_column(Integer)
    # Chromium's id of the extension (from its key), the same in every browser that loads it.
    chrome_extension_id: Mapped[str | None] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8))  # crx | zip: what was uploaded
    source: Mapped[str] = mapped_column(String(8))  # upload | url
    source_url: Mapped[str | None] = mapped_column(String(2048))
    object_key: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the package as uploaded, and its size.
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # {"permissions": [...], "hostPermissions": [...]} as the manifest asks.
    permissions: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

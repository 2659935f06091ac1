"""Tables of usage: the spending caps (usage itself is measured from runs, commands and stored bytes)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

# The contract's default: a cap warns at 80% of its amount.
DEFAULT_WARN_AT_PERCENT = 80.0


class SpendingCap(Base):
    """A monthly cap in USD cents, of an account (`space_id` null) or of one of its spaces. Keyed by
    the scope's own id (the account's or the space's), so each scope has at most one."""

    __tablename__ = "spending_caps"

    scope_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    # Null: no cap (disabled); 0 refuses every new start.
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    warn_at_percent: Mapped[float] = mapped_column(Float, default=DEFAULT_WARN_AT_PERCENT)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

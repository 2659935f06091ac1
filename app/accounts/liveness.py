"""A long-lived response (an event stream) authenticated once must not outlive its key: revoked, expired,
or its account archived ends it, as the next request with the key would be refused (401)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TypeVar

import structlog
from sqlalchemy import select

from app.accounts.models import Account, AccountStatus, ApiKey
from app.core import clock
from app.core.context import AppContext
from app.core.errors import Unauthorized

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def key_refusal(ctx: AppContext, key_id: uuid.UUID) -> Unauthorized | None:
    """Why a key that authenticated earlier would now be refused, or None: one indexed read."""
    stmt = (
        select(ApiKey.revoked_at, ApiKey.expires_at, Account.status)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.id == key_id)
    )
    async with ctx.db.read() as s:
        row = (await s.execute(stmt)).one_or_none()
    details = {"keyId": str(key_id)}
    if row is None or row.revoked_at is not None:
        return Unauthorized("API key has been revoked", code="auth.invalid", details=details)
    if row.expires_at is not None and row.expires_at <= clock.now():
        return Unauthorized("API key has expired", code="auth.expired", details=details)
    if row.status == AccountStatus.ARCHIVED:
        return Unauthorized("The subaccount of this API key is archived", code="subaccount.archived", details=details)
    return None


async def while_key_valid(
    ctx: AppContext, key_id: uuid.UUID, frames: AsyncIterator[T], refused: Callable[[Unauthorized], T]
) -> AsyncIterator[T]:
    """`frames` until the key stops being valid, then `refused(error)` as the last frame. The key is read
    again when a frame passes and a heartbeat interval has gone by since the last read: an idle stream
    sends a heartbeat each interval, so a revoked key's stream ends within about one interval (two at
    most) and a busy stream costs one read per interval, not one per event."""
    loop = asyncio.get_running_loop()
    # A little under the interval, so the heartbeat that follows one interval after the check triggers one.
    every = ctx.settings.sse_heartbeat_seconds * 0.9
    checked = loop.time()
    async with aclosing(frames):
        async for frame in frames:
            if loop.time() - checked >= every:
                checked = loop.time()
                try:
                    error = await key_refusal(ctx, key_id)
                except Exception:  # the database is away: the stream's own reads report it and end it
                    log.warning("stream_key_check_failed", exc_info=True)
                    error = None
                if error is not None:
                    log.info("stream_ended_key_refused", key_id=str(key_id), code=error.code)
                    yield refused(error)
                    return
            yield frame

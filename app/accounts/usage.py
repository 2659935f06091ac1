"""When an API key was last used and how often: counted in memory, written at most once a minute.

A write on every authenticated request would put a database write (and, on SQLite, the writer queue)
in front of every read. Instead each process counts a key's requests and adds them to the row on the
first request after a minute has passed (and on the key's first request in this process). Reads add
what this process has not written yet, so a single-process server shows exact figures; with several
processes a key's `usageCount` can lag by up to a minute of another process's requests."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

from sqlalchemy import update

from app.accounts.models import ApiKey
from app.core import clock
from app.core.db import Database

FLUSH_EVERY_SECONDS = 60.0
log = logging.getLogger(__name__)

_pending: dict[uuid.UUID, int] = {}
_last_seen: dict[uuid.UUID, datetime] = {}
_flushed_at: dict[uuid.UUID, float] = {}


async def note(db: Database, key_id: uuid.UUID) -> None:
    """Count one authenticated request of `key_id`; write the counts when a minute has passed."""
    _pending[key_id] = _pending.get(key_id, 0) + 1
    _last_seen[key_id] = seen = clock.now()
    now = time.monotonic()
    if now - _flushed_at.get(key_id, -FLUSH_EVERY_SECONDS) < FLUSH_EVERY_SECONDS:
        return
    _flushed_at[key_id] = now  # before the await: concurrent requests of this key do not write too
    count = _pending.pop(key_id, 0)
    try:
        async with db.transaction() as s:
            await s.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(usage_count=ApiKey.usage_count + count, last_used_at=seen)
            )
    except Exception:
        _pending[key_id] = _pending.get(key_id, 0) + count
        _flushed_at.pop(key_id, None)
        log.warning("could not record the use of API key %s; retried on its next request", key_id, exc_info=True)


def unwritten(key_id: uuid.UUID) -> int:
    """Requests of `key_id` this process counted but has not written yet."""
    return _pending.get(key_id, 0)


def last_seen(key_id: uuid.UUID) -> datetime | None:
    return _last_seen.get(key_id)


def forget(key_id: uuid.UUID) -> None:
    for memo in (_pending, _last_seen, _flushed_at):
        memo.pop(key_id, None)

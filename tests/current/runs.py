"""A run row for tests that write events straight through the writer (no browser behind it)."""

from __future__ import annotations

import uuid

from app.core import clock, ids
from app.runs.models import Run


async def active_run(server, api) -> Run:
    """An active browser run in the caller's default space, created directly in the database."""
    me = (await api.get("/v1/auth/whoami")).json()
    now = clock.now()
    run = Run(
        id=ids.new_id(),
        account_id=uuid.UUID(me["organizationId"]),
        space_id=uuid.UUID(me["defaultSpaceId"]),
        runtime_id=ids.new_id(),
        runtime_type="browser",
        status="active",
        recording=False,
        failure=None,
        event_seq=0,
        created_at=now,
        started_at=now,
    )
    async with server.ctx.db.transaction() as s:
        s.add(run)
    return run

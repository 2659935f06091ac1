"""Transactions: reads take no write lock, and a read-only transaction cannot write (issue 12)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from app.spaces.models import Space

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def test_a_read_does_not_wait_for_an_open_write(server):
    db = server.ctx.db
    async with db.transaction() as s:
        await s.execute(select(Space).limit(1))
        await s.execute(text("UPDATE spaces SET name = name WHERE 1 = 0"))  # holds the write lock now

        async def read():
            async with db.read() as r:
                return (await r.execute(select(Space.id).limit(1))).all()

        # SQLite's write lock (and the in-process writer queue) must not hold a reader up.
        await asyncio.wait_for(read(), 5)


async def test_twenty_concurrent_writes_all_commit(server, api):
    before = len((await api.get("/v1/spaces", params={"limit": 200})).json()["data"])
    created = await asyncio.gather(*(api.post("/v1/spaces", json={"name": f"q{i}"}) for i in range(20)))
    assert [r.status_code for r in created] == [201] * 20
    after = (await api.get("/v1/spaces", params={"limit": 200})).json()["data"]
    assert len(after) == before + 20


async def test_a_read_only_transaction_refuses_a_write_on_postgres(server):
    db = server.ctx.db
    if not db.is_postgres:
        pytest.skip("SQLite has no read-only transactions; the PostgreSQL run guards every read() for both")
    with pytest.raises(Exception, match="read-only"):
        async with db.read() as s:
            await s.execute(text("UPDATE spaces SET name = name WHERE 1 = 0"))

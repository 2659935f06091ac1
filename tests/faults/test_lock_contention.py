"""Exactly one controller under contention, on both backends, and a stale holder's token is powerless."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.connections.models import Connection
from app.runtimes import controller
from app.runtimes.models import Runtime

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


def _leases(runtime: dict) -> str:
    return f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections"


async def test_racing_lease_creates_exactly_one_wins(server, api):
    space = (await api.post("/v1/spaces", json={"name": "race"})).json()
    runtime = (await api.post(f"/v1/spaces/{space['id']}/runtimes", json={})).json()
    try:
        answers = await asyncio.gather(*[api.post(_leases(runtime), json={"protocol": "cdp"}) for _ in range(20)])
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] + [409] * 19, codes
        winner = next(r.json() for r in answers if r.status_code == 201)
        assert all(r.json()["details"]["holder"]["id"] == winner["id"] for r in answers if r.status_code == 409)
    finally:
        await api.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")


async def test_a_stale_token_cannot_release_renew_or_attach(server, api):
    space = (await api.post("/v1/spaces", json={"name": "stale"})).json()
    runtime = (await api.post(f"/v1/spaces/{space['id']}/runtimes", json={})).json()
    rid = uuid.UUID(runtime["id"])
    try:
        first = (await api.post(_leases(runtime), json={"protocol": "cdp"})).json()
        async with server.ctx.db.transaction() as s:
            old = (await s.get(Connection, uuid.UUID(first["id"]))).lock_token
        assert (await api.delete(f"{_leases(runtime)}/{first['id']}")).status_code == 200
        second = await api.post(_leases(runtime), json={"protocol": "cdp"})
        assert second.status_code == 201
        async with server.ctx.db.transaction() as s:
            new = (await s.get(Connection, uuid.UUID(second.json()["id"]))).lock_token
            assert int(new.rsplit(":", 1)[1]) > int(old.rsplit(":", 1)[1])
            assert not await controller.release(server.ctx, s, rid, old)
            assert not await controller.renew(server.ctx, s, rid, old, 60_000)
            row = await s.get(Runtime, rid)
            assert await controller.holds(s, row, new) and not await controller.holds(s, row, old)
        third = await api.post(_leases(runtime), json={"protocol": "cdp"})
        assert third.status_code == 409 and third.json()["details"]["holder"]["id"] == second.json()["id"]
    finally:
        await api.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

"""Connection leases over the API (the websocket side is in tests/e2e)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from app.connections.models import Connection

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def _active_runtime(api) -> dict:
    space = (await api.post("/v1/spaces", json={"name": "leases"})).json()
    runtime = (await api.post(f"/v1/spaces/{space['id']}/runtimes", json={})).json()
    assert runtime["status"] == "active"
    return runtime


def _base(runtime: dict) -> str:
    return f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections"


async def test_lease_is_shown_once_and_holds_the_lock(server, api, stop_afterwards):
    runtime = await _active_runtime(api)
    stop_afterwards(runtime["id"])
    created = await api.post(_base(runtime), json={"protocol": "cdp", "ttlSeconds": 120})
    assert created.status_code == 201
    lease = created.json()
    assert lease["status"] == "active" and lease["ttlSeconds"] == 120 and lease["runId"] == runtime["activeRunId"]
    assert lease["endpoint"]["url"].startswith("ws://127.0.0.1:8787/v1/cdp/" + lease["id"] + "?token=")
    token = lease["endpoint"]["url"].split("token=")[1]
    got = (await api.get(f"{_base(runtime)}/{lease['id']}")).json()
    assert got["endpoint"] is None and token not in str(got)
    busy = await api.post(_base(runtime), json={"protocol": "cdp"})
    holder = busy.json()["details"]["holder"]
    assert busy.status_code == 409 and (holder["kind"], holder["id"], holder["holder"]) == (
        "connection",
        lease["id"],
        "agent",
    )
    assert holder["until"]  # when the lease ends, for the refused caller to say
    await api.post(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/stop")
    assert (await api.get(f"{_base(runtime)}/{lease['id']}")).json()["status"] == "closed"


async def test_another_accounts_leases_are_404(server, api, stop_afterwards):
    runtime = await _active_runtime(api)
    stop_afterwards(runtime["id"])
    lease = (await api.post(_base(runtime), json={"protocol": "cdp"})).json()
    async with await server.client("other") as other:
        for response in (
            await other.post(_base(runtime), json={"protocol": "cdp"}),
            await other.get(_base(runtime)),
            await other.get(f"{_base(runtime)}/{lease['id']}"),
            await other.delete(f"{_base(runtime)}/{lease['id']}"),
        ):
            assert response.status_code == 404, response.text
    assert (await api.get(f"{_base(runtime)}/{lease['id']}")).json()["status"] == "active"
    assert (await api.get(f"{_base(runtime)}/not-a-uuid")).json()["code"] == "connection.not_found"


async def test_a_lock_left_by_a_dead_lease_is_taken_over(server, api, stop_afterwards):
    """The lease row says revoked but its lock was never released (a crash between the two)."""
    runtime = await _active_runtime(api)
    stop_afterwards(runtime["id"])
    lease = (await api.post(_base(runtime), json={"protocol": "cdp"})).json()
    async with server.ctx.db.transaction() as s:
        await s.execute(update(Connection).where(Connection.id == uuid.UUID(lease["id"])).values(status="revoked"))
    second = await api.post(_base(runtime), json={"protocol": "cdp"})
    assert second.status_code == 201, second.text
    third = await api.post(_base(runtime), json={"protocol": "cdp"})
    assert third.status_code == 409 and third.json()["details"]["holder"]["id"] == second.json()["id"]


async def test_flat_start_twice_shares_the_runs_connection(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={})).json()
    stop_afterwards(runtime["id"])
    import asyncio

    first, second = await asyncio.gather(
        api.post(f"/v1/runtimes/{runtime['id']}/start"), api.post(f"/v1/runtimes/{runtime['id']}/start")
    )
    urls = set()
    for response in (first, second):
        if response.status_code == 200:
            urls.add(response.json()["connection"]["cdpUrl"])
        else:
            assert response.json()["code"] == "runtime.transitioning"
    assert len(urls) == 1
    got = (await api.get(f"/v1/runtimes/{runtime['id']}", params={"include": "connection"})).json()
    assert got["connection"]["cdpUrl"] in urls and got["connectUrl"] in urls
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    stopped = (await api.get(f"/v1/runtimes/{runtime['id']}", params={"include": "connection"})).json()
    assert stopped["connection"] is None


async def test_bad_lease_requests(server, api):
    runtime = (await api.post("/v1/runtimes", json={})).json()
    base = _base(runtime)
    refused = await api.post(base, json={"protocol": "cdp"})
    assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_active"
    for body, field in (
        ({"protocol": "cua"}, "protocol"),
        ({"protocol": "cdp", "ttlSeconds": 59}, "ttlSeconds"),
        ({"protocol": "cdp", "ttlSeconds": 7201}, "ttlSeconds"),
        ({}, "protocol"),
        ({"protocol": "cdp", "extra": 1}, "extra"),
    ):
        response = await api.post(base, json=body)
        assert response.status_code == 400 and field in [f["field"] for f in response.json()["details"]["fields"]]
    assert (await api.get(base)).json()["data"] == []

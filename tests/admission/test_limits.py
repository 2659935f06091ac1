"""Admission's limits per account (`limits.maxActiveRuns`) and per space, on both backends: the
refusal names the limit that holds a start back, and a waiter held back by its own account's limit
does not keep a free slot from another account."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy import update

from app.accounts.models import Account
from app.accounts.service import create_account, create_key

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def tenant(srv, exits: AsyncExitStack, limits: dict | None = None) -> httpx.AsyncClient:
    """A client of a new account with these `limits`; its browsers are deleted (so stopped) on exit."""
    account = await create_account(srv.ctx.db, "admission")
    if limits is not None:
        async with srv.ctx.db.transaction() as s:
            await s.execute(update(Account).where(Account.id == account.id).values(limits=limits))
    key = await create_key(srv.ctx.db, account.id, "test")
    client = await exits.enter_async_context(
        srv.anonymous(headers={"Authorization": f"Bearer {key.secret}", **CURRENT})
    )

    async def cleanup() -> None:
        for browser in (await client.get("/v1/browsers")).json()["data"]:
            await client.get(f"/v1/browsers/{browser['id']}", params={"wait": 30})
            await client.delete(f"/v1/browsers/{browser['id']}")

    exits.push_async_callback(cleanup)
    return client


async def space(client: httpx.AsyncClient) -> str:
    made = await client.post("/v1/spaces", json={"name": f"admission-{uuid.uuid4().hex[:8]}"})
    assert made.status_code in (200, 201), made.text
    return made.json()["id"]


async def create(client: httpx.AsyncClient, space_id: str, wait: int = 30) -> httpx.Response:
    return await client.post("/v1/browsers", params={"wait": wait}, json={"spaceId": space_id})


def refusal(answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    error = answer.json()["error"]
    return error["code"], error["details"]["scope"]


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_space_account_and_deployment_limits(make_server, backend):
    async with (
        make_server(backend, max_runtimes=2, max_browsers_per_space=1) as srv,
        AsyncExitStack() as exits,
    ):
        capped = await tenant(srv, exits, {"maxActiveRuns": 2})
        first_space, second_space, third_space = [await space(capped) for _ in range(3)]
        running = await create(capped, first_space)
        assert running.status_code == 201 and running.json()["status"] == "running", running.text
        # Its space holds one browser: refused for the space, with slots and the account's quota free.
        assert refusal(await create(capped, first_space, wait=0)) == ("browser.concurrent_quota_exceeded", "space")
        assert (await create(capped, second_space)).status_code == 201
        # A third space of the same account: its maxActiveRuns (2) holds it back.
        assert refusal(await create(capped, third_space, wait=0)) == (
            "subaccounts.active_run_limit_exceeded",
            "account",
        )
        # Both slots of the deployment are taken: another account is refused for the deployment.
        other = await tenant(srv, exits)
        code, scope = refusal(await create(other, await space(other), wait=0))
        assert (code, scope) == ("browser.concurrent_quota_exceeded", "deployment")
        load = (await srv.anonymous().get("/pressure")).json()
        assert load["slots"][0]["used"] == 2 and load["isAvailable"] is False
        # Refused creates keep nothing.
        assert len((await capped.get("/v1/browsers")).json()["data"]) == 2
        assert (await other.get("/v1/browsers")).json()["data"] == []


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_a_waiter_held_by_its_account_does_not_hold_a_free_slot(make_server, backend):
    async with (
        make_server(backend, max_runtimes=2, admission_poll_seconds=0.1) as srv,
        AsyncExitStack() as exits,
    ):
        capped = await tenant(srv, exits, {"maxActiveRuns": 1})
        capped_space = await space(capped)
        first = await create(capped, capped_space)
        assert first.status_code == 201, first.text
        waiting = asyncio.ensure_future(create(capped, capped_space, wait=30))

        async def queued() -> int:
            return (await srv.anonymous().get("/pressure")).json()["queue"]["depth"]

        while await queued() != 1:
            await asyncio.sleep(0.05)
        # The deployment has a free slot the waiter cannot use: another account's start gets it at once.
        other = await tenant(srv, exits)
        now = await create(other, await space(other), wait=0)
        assert now.status_code == 201, now.text
        assert not waiting.done()
        # Its own browser stops: the waiter gets its account's place.
        stopped = await capped.post(f"/v1/browsers/{first.json()['id']}/stop", params={"wait": 30})
        assert stopped.status_code == 200, stopped.text
        admitted = await asyncio.wait_for(waiting, 40)
        assert admitted.status_code == 201 and admitted.json()["currentRun"] is not None, admitted.text
        assert await queued() == 0

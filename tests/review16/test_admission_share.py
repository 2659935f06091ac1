"""One organization cannot fill the deployment's admission queue: an account and its subaccounts together
hold at most `admission_queue_max_per_account` waiting starts; one more is refused at once (429, the
queue-full envelope naming the organization's share, Retry-After), while another organization still
gets a place in the queue. One browser slot, held by a third account, so every start here waits."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.admission.test_limits import CURRENT, create, space, tenant

SHARE = 2


async def depth(srv) -> int:
    return (await srv.anonymous().get("/pressure")).json()["queue"]["depth"]


async def until_depth(srv, wanted: int) -> None:
    async with asyncio.timeout(20):
        while await depth(srv) != wanted:
            await asyncio.sleep(0.05)


async def subaccount(srv, exits: AsyncExitStack, org: httpx.AsyncClient) -> httpx.AsyncClient:
    made = await org.post("/v1/subaccounts", json={"name": f"share-{uuid.uuid4().hex[:8]}"})
    assert made.status_code == 201, made.text
    headers = {**org.headers, "BCTRL-Subaccount-Id": made.json()["id"], **CURRENT}
    return await exits.enter_async_context(srv.anonymous(headers=headers))


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_an_organization_holds_at_most_its_share_of_the_queue(make_server, backend):
    async with (
        make_server(
            backend,
            max_runtimes=1,
            admission_queue_max=10,
            admission_queue_max_per_account=SHARE,
            admission_poll_seconds=0.1,
        ) as srv,
        AsyncExitStack() as exits,
    ):
        holder = await tenant(srv, exits)
        held = await create(holder, await space(holder))
        assert held.status_code == 201, held.text

        org = await tenant(srv, exits)
        sub = await subaccount(srv, exits, org)
        org_space, sub_space = await space(org), await space(sub)
        # The organization's share: one start of its own, one of its subaccount's.
        waiters = [asyncio.ensure_future(create(org, org_space, wait=8))]
        await until_depth(srv, 1)
        waiters.append(asyncio.ensure_future(create(sub, sub_space, wait=8)))
        await until_depth(srv, 2)

        # One more start of the organization, from either tenant, is refused at once, not queued.
        for client, space_id in ((org, org_space), (sub, sub_space)):
            refused = await create(client, space_id, wait=5)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            details = refused.json()["error"]["details"]
            assert details["queueFull"] is True and details["queueScope"] == "account", details
            assert (details["queueHeld"], details["queueLimit"]) == (SHARE, SHARE)
            assert await depth(srv) == 2

        # Another organization still gets a place in the queue.
        other = await tenant(srv, exits)
        waiters.append(asyncio.ensure_future(create(other, await space(other), wait=8)))
        await until_depth(srv, 3)

        # No slot frees: every waiter ends 429 at its deadline, and the queue empties.
        answers = await asyncio.gather(*waiters)
        assert [a.status_code for a in answers] == [429, 429, 429]
        assert [a.json()["error"]["details"]["queueFull"] for a in answers] == [False, False, False]
        assert await depth(srv) == 0

"""The warm pool (BCTRL_POOL_SIZE) in process, over both backends, through the 0.3 client: a create of
the default configuration gets a browser launched ahead (the runtime's process is one the pool had
started), other configurations start cold, the pool refills and recycles old browsers, its browsers
are nobody's (no slot, no list), a claimed browser shows nothing of another user's, and a shutdown
leaves no pool process behind."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from bctrl import AsyncBctrl
from playwright.async_api import async_playwright
from sqlalchemy import select

from app.accounts.service import create_account, create_key
from app.runtimes.models import Runtime
from tests.conftest import fresh_pg_database, make_settings, running_app
from tests.e2e.extension_packages import marker_zip
from tests.support import PageServer, chromium_pids, eventually, profile_fragment

V = {"BCTRL-Version": "2026-10-03"}
PAGES = os.path.join(os.path.dirname(__file__), "..", "e2e", "pages")


@asynccontextmanager
async def pooled_server(tmp, backend: str, **overrides):
    values = dict(pool_size=2, pool_fill_per_second=10.0, max_runtimes=2) | overrides
    if backend == "postgres":
        async with fresh_pg_database() as url, running_app(make_settings(tmp, backend, url, **values)) as srv:
            yield srv
    else:
        async with running_app(make_settings(tmp, backend, None, **values)) as srv:
            yield srv


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
async def server(request, tmp_path_factory):
    async with pooled_server(tmp_path_factory.mktemp(f"pool-{request.param}"), request.param) as srv:
        yield srv


def http_of(server, secret: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=server.app)
    headers = {"Authorization": f"Bearer {secret}", **V}
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers, timeout=60)


@asynccontextmanager
async def tenant(server):
    """(0.3 client, raw client) of a fresh account; every browser it made is deleted afterwards."""
    account = await create_account(server.ctx.db, f"pool-{uuid.uuid4().hex[:6]}")
    secret = (await create_key(server.ctx.db, account.id, "test")).secret
    async with http_of(server, secret) as raw, http_of(server, secret) as for_sdk:
        client = AsyncBctrl(token=secret, base_url="http://testserver", httpx_client=for_sdk)
        try:
            yield client, raw
        finally:
            for b in (await raw.get("/v1/browsers")).json()["data"]:
                await raw.delete(f"/v1/browsers/{b['id']}")


async def driver_state(server, browser_id: str) -> dict:
    async with server.ctx.db.read() as s:
        return (await s.get(Runtime, uuid.UUID(browser_id))).driver_state or {}


async def full(server) -> set[int]:
    pool = server.ctx.pool
    return await eventually(lambda: len(pool.pids()) == pool.pool_size and pool.pids(), timeout=30)


async def test_a_default_create_gets_a_pool_browser_and_the_pool_refills(server):
    pool = server.ctx.pool
    waiting = await full(server)
    await server.ctx.supervisor.sweep()  # the sweep takes no pool browser for an orphan
    assert all(os.path.exists(f"/proc/{pid}") for pid in waiting) and pool.pids() == waiting
    claimed_before = pool.claimed
    async with tenant(server) as (client, _raw):
        created = await client.browsers.create(wait=30)
        assert created.current_run.status == "active"
        state = await driver_state(server, created.id)
        assert state["pid"] in waiting and pool.claimed == claimed_before + 1
        assert state["pool"]["runtimeId"] == created.id
        # Its run's own download directory, owned by the browser's uid.
        assert state["downloadsDir"].endswith(created.current_run.id) and os.path.isdir(state["downloadsDir"])
        assert os.stat(state["downloadsDir"]).st_uid == state["uid"] != 0
        refilled = await full(server)
        assert state["pid"] not in refilled and len(refilled) == 2
        await server.ctx.supervisor.sweep()  # the claimed browser is its runtime's, not an orphan
        assert (await client.browsers.get(created.id)).current_run.status == "active"
        stopped = await client.browsers.stop(created.id, wait=30)
        assert stopped.current_run is None or stopped.current_run.status == "ended"
        await eventually(lambda: not os.path.exists(f"/proc/{state['pid']}"))
        assert pool.pids() == refilled  # a stopped browser never goes back to the pool


async def test_other_configurations_start_cold(server):
    pool = server.ctx.pool
    async with tenant(server) as (client, raw):
        upload = await raw.post("/v1/browser/extensions", files={"file": ("ext.zip", marker_zip(), "application/zip")})
        assert upload.status_code == 201, upload.text
        for options in ({"viewport": {"width": 1024, "height": 700}}, {"extensions": [upload.json()["id"]]}):
            waiting = await full(server)
            claimed = pool.claimed
            created = await client.browsers.create(wait=30, **options)
            assert created.current_run.status == "active", options
            state = await driver_state(server, created.id)
            assert state["pid"] not in waiting and "pool" not in state and pool.claimed == claimed, options
            await client.browsers.stop(created.id, wait=30)


async def test_pool_browsers_take_no_slot_and_are_in_no_list(server):
    await full(server)
    async with tenant(server) as (client, raw):
        first = await client.browsers.create(wait=30)
        second = await client.browsers.create(wait=30)  # max_runtimes=2: the two waiting took none
        listed = (await raw.get("/v1/browsers")).json()["data"]
        assert sorted(b["id"] for b in listed) == sorted([first.id, second.id])
        refused = await raw.post("/v1/browsers", json={})
        assert refused.status_code == 429, refused.text
        for b in (first, second):
            await client.browsers.stop(b.id, wait=30)
        async with server.ctx.db.read() as s:
            known = set((await s.execute(select(Runtime.id))).scalars())
        # No pool browser is a row of any account (its pool id names no runtime).
        for pid in await full(server):
            profile = next(
                a for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if b"--user-data-dir=" in a
            )
            assert uuid.UUID(profile.decode().rsplit("/", 1)[1].split(".")[0]) not in known


async def test_a_claimed_browser_shows_nothing_of_the_previous_user(server):
    site = PageServer(Path(PAGES))
    try:
        async with tenant(server) as (alice, _), tenant(server) as (bob, _), async_playwright() as pw:
            await full(server)
            mine = await alice.browsers.create(wait=30)
            mine_state = await driver_state(server, mine.id)
            assert "pool" in mine_state
            browser = await pw.chromium.connect_over_cdp(mine_state["wsUrl"])
            page = browser.contexts[0].pages[0]
            await page.goto(f"{site.url}/index.html")
            await page.evaluate("document.cookie = 'who=alice; max-age=3600'; localStorage.setItem('who', 'alice')")
            assert "who=alice" in await page.evaluate("document.cookie")
            await browser.close()
            await full(server)
            theirs = await bob.browsers.create(wait=30)
            theirs_state = await driver_state(server, theirs.id)
            assert "pool" in theirs_state and theirs_state["pid"] != mine_state["pid"]
            assert theirs_state["profileDir"] != mine_state["profileDir"] and theirs_state["uid"] != mine_state["uid"]
            browser = await pw.chromium.connect_over_cdp(theirs_state["wsUrl"])
            context = browser.contexts[0]
            page = context.pages[0]
            await page.goto(f"{site.url}/index.html")
            assert await page.evaluate("document.cookie") == ""
            assert await page.evaluate("localStorage.getItem('who')") is None
            assert await context.cookies() == []
            await browser.close()
            await alice.browsers.stop(mine.id, wait=30)
            await bob.browsers.stop(theirs.id, wait=30)
    finally:
        site.close()


async def test_old_pool_browsers_are_recycled_and_shutdown_ends_the_pool(tmp_path):
    async with pooled_server(tmp_path, "sqlite", pool_size=1, pool_max_age_seconds=1.5) as srv:
        pool = srv.ctx.pool
        first = await eventually(lambda: pool.pids(), timeout=30)
        await eventually(lambda: pool.recycled >= 1 and pool.pids() and not pool.pids() & first, timeout=30)
        await eventually(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in first))
        last = pool.pids()
        assert chromium_pids(profile_fragment(tmp_path))
    # running_app also checks that no Chromium of this data directory is left.
    assert not any(os.path.exists(f"/proc/{pid}") for pid in last)
    assert chromium_pids(profile_fragment(tmp_path)) == []

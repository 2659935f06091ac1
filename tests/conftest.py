"""Fixtures: a real PostgreSQL database built by Alembic, the embedded SQLite defaults, real Chromium.

Isolation: each test session gets its own PostgreSQL database (dropped at the end), and each
test gets its own account and API key, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.accounts.service import create_account, create_key
from app.core.config import Settings
from app.core.migrate import upgrade
from app.main import create_app
from tests.support import chromium_pids, profile_fragment

PG_ADMIN_DSN = os.environ.get("BCTRL_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BCTRL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new PostgreSQL database with the schema built by Alembic; dropped afterwards."""
    name = f"bctrl_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        await upgrade(url)
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


class Server:
    """An app running in-process with its lifespan, and a way to mint clients for new accounts."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    @property
    def ctx(self):
        return self.app.state.ctx

    async def client(self, account_name: str = "test") -> httpx.AsyncClient:
        account = await create_account(self.ctx.db, account_name)
        key = await create_key(self.ctx.db, account.id, "test")
        return self.anonymous(headers={"Authorization": f"Bearer {key.secret}"})

    def anonymous(self, headers: dict | None = None, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=raise_app_exceptions)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers or {}, timeout=60)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Server]:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade(settings.resolved_database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield Server(app, settings)
        watchdog = asyncio.get_running_loop().call_later(60, _dump_tasks, "server shutdown still waiting after 60 s")
    watchdog.cancel()
    # Whatever a test left running, shutting the server down must not leave Chromium behind.
    assert chromium_pids(profile_fragment(settings.data_dir)) == []


def _dump_tasks(why: str) -> None:
    """A shutdown that hangs says what it waits on: every task's stack, to the real stderr (pytest
    captures the other)."""
    print(f"\n--- {why}; tasks:", file=sys.__stderr__)
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.__stderr__)


def make_settings(tmp: Path, backend: str, pg: str | None, **overrides) -> Settings:
    values = dict(data_dir=tmp, port=8787, sweep_interval_seconds=1.0, launch_timeout_seconds=20.0)
    if backend == "postgres":
        # The production pairing: PostgreSQL with the Redis lock and notifier, in a namespace of its own.
        values.update(database_url=pg, redis_url=REDIS_URL, redis_prefix=f"bctrl-test-{uuid.uuid4().hex[:8]}")
    values.update(overrides)
    return Settings(**values)


def pytest_collection_modifyitems(config, items):
    """The shared server runs every API test on PostgreSQL, and on the embedded defaults (SQLite, the
    in-process lock) only the modules marked `sqlite`: the data layer and the core flows. The other
    modules differ only above the database, and running them twice doubled the suite's time."""
    kept, dropped = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        on_sqlite = spec is not None and spec.params.get("server") == "sqlite"
        (dropped if on_sqlite and item.get_closest_marker("sqlite") is None else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
async def server(request, tmp_path_factory, pg_url) -> AsyncIterator[Server]:
    """The shared server of the API tier, once on PostgreSQL and once on the embedded defaults."""
    backend = request.param
    settings = make_settings(tmp_path_factory.mktemp(f"data-{backend}"), backend, pg_url)
    async with running_app(settings) as srv:
        yield srv


@pytest.fixture
async def api(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as a fresh account on the shared server."""
    async with await server.client() as client:
        yield client


@pytest.fixture
async def stop_afterwards(api):
    """`stop_afterwards(runtime_id)`: the runtime is stopped in teardown, whether the test passed or not,
    so a failed assertion leaves no browser holding one of the shared server's slots. Stopping a runtime
    that is stopped already (or failed) answers 200 `stopped: false`, a deleted one 404: both are fine."""
    runtime_ids: list[str] = []
    yield runtime_ids.append
    answers = [await api.post(f"/v1/runtimes/{runtime_id}/stop") for runtime_id in runtime_ids]
    assert all(a.status_code in (200, 404) for a in answers), [a.text for a in answers]


@pytest.fixture
async def make_server(tmp_path):
    """Builds a dedicated server, with its own database, for tests that need their own limits."""

    @asynccontextmanager
    async def factory(backend: str = "postgres", **overrides) -> AsyncIterator[Server]:
        data_dir = tmp_path / uuid.uuid4().hex[:8]
        if backend == "postgres":
            async with fresh_pg_database() as url:
                async with running_app(make_settings(data_dir, backend, url, **overrides)) as srv:
                    yield srv
        else:
            async with running_app(make_settings(data_dir, backend, None, **overrides)) as srv:
                yield srv

    return factory

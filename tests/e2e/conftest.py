"""End-to-end fixtures: real `bctrl-server serve` processes on PostgreSQL and Redis, real Chromium,
and a page server on 127.0.0.1. These tests are synchronous (Playwright's sync API, the SDK)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError

from tests.conftest import PG_ADMIN_DSN, REDIS_URL
from tests.support import PageServer, chromium_pids, env_with, free_port, profile_fragment

PAGES = Path(__file__).parent / "pages"
BIN = Path(sys.executable).parent


@dataclass
class LiveServer:
    url: str
    api_key: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def client(self) -> httpx.Client:
        # Above any launch timeout the tiers set (the Docker tier's is 60 s): a create that times out on the
        # client's side would still start a browser nobody stops.
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=120)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _run(coro) -> None:
    """asyncio.run on a thread of its own: callers may sit inside Playwright's sync API, which owns this thread's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def create_db() -> str:
    name = f"bctrl_e2e_{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    _run(run())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def drop_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    _run(run())


def start_server(
    data_dir: Path, database_url: str, api_key: str, redis_prefix: str, port: int | None = None, **extra: str
) -> LiveServer:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    values = dict(
        BCTRL_DATA_DIR=str(data_dir),
        BCTRL_DATABASE_URL=database_url,
        BCTRL_REDIS_URL=REDIS_URL,
        BCTRL_REDIS_PREFIX=redis_prefix,
        BCTRL_API_KEY=api_key,
        BCTRL_PORT=str(port),
        BCTRL_HOST="127.0.0.1",
        BCTRL_SWEEP_INTERVAL_SECONDS="1",
    )
    env = env_with(**{**values, **extra})
    process = subprocess.Popen(
        [str(BIN / "bctrl-server"), "serve"], env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT
    )
    server = LiveServer(
        url=f"http://127.0.0.1:{port}", api_key=api_key, data_dir=data_dir, process=process, log_path=log_path
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


def stop_server(server: LiveServer, sig: int = signal.SIGTERM) -> None:
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def cluster(tmp: Path, count: int = 1, **extra: str):
    """`count` server processes sharing one fresh database and one Redis namespace."""
    url = create_db()
    key = f"bctrl_e2e_{uuid.uuid4().hex}"
    prefix = f"bctrl-test-{uuid.uuid4().hex[:8]}"
    servers: list[LiveServer] = []
    try:
        for i in range(count):
            servers.append(start_server(tmp / f"srv{i}", url, key, prefix, **extra))
        yield servers
    finally:
        for server in servers:
            stop_server(server)
        for server in servers:
            assert chromium_pids(profile_fragment(server.data_dir)) == [], "Chromium left behind"
        drop_db(url)


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("live"), BCTRL_SSE_HEARTBEAT_SECONDS="1") as servers:
        yield servers[0]


@pytest.fixture(scope="session")
def pages():
    server = PageServer(PAGES)
    yield server
    server.close()


@pytest.fixture
def client(live):
    """The official client of today (`from bctrl import Bctrl`, 0.3) on the session's server."""
    return Bctrl(token=live.api_key, base_url=live.url)


@pytest.fixture
def browsers(client):
    """Browsers a test creates (by id), stopped and deleted in teardown whatever the test's outcome."""
    made: list[str] = []
    yield made.append
    for browser_id in made:
        try:
            client.browsers.delete(browser_id)
        except NotFoundError:
            pass


@pytest.fixture(scope="module")
def sdk(live):
    """The official client for module-scoped fixtures."""
    return Bctrl(token=live.api_key, base_url=live.url)


@pytest.fixture(scope="module")
def running(sdk, request):
    """One running browser for the module's tests, deleted (so stopped) in teardown."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_current_")
    made = sdk.browsers.create(name=f"{prefix}-{uuid.uuid4().hex[:8]}", wait=30)
    try:
        assert made.status == "running", made
        yield made
    finally:
        try:
            sdk.browsers.delete(made.id)
        except NotFoundError:
            pass


def other_account_key(server: LiveServer, name: str = "e2e") -> str:
    """A key of a new account of the same server, made by the CLI as an operator would (with the
    server's own environment, so it reaches the server's database)."""
    environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
    env = {**os.environ, **dict(e.decode().split("=", 1) for e in environ if b"=" in e)}
    made = subprocess.run(
        [str(BIN / "bctrl-server"), "keys", "create", "--account", f"other-{uuid.uuid4().hex[:8]}", "--name", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return next(w for w in made.stdout.split() if len(w) > 20)


@pytest.fixture
def other_client(live):
    """A client of another account of the same server (its key made by the CLI, as an operator would)."""
    return Bctrl(token=other_account_key(live), base_url=live.url)


@pytest.fixture
def space(live):
    with live.client() as client:
        return client.post("/v1/spaces", json={"name": f"e2e-{uuid.uuid4().hex[:6]}"}).json()


@pytest.fixture
def runtime(live, space):
    """An active seed runtime, stopped afterwards."""
    with live.client() as client:
        rt = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert rt["status"] == "active", rt
        yield rt
        client.post(f"/v1/spaces/{space['id']}/runtimes/{rt['id']}/stop")


def stop_in_teardown(server: LiveServer):
    """The body of the `stop_afterwards` fixtures: `stop_afterwards(runtime_id)` has the runtime stopped
    in teardown, whether the test passed or not, so a failed assertion leaves no browser on the shared
    server. Stopping a runtime that is stopped already (or failed) answers 200 `stopped: false`, a
    deleted one 404: both are fine."""
    runtime_ids: list[str] = []
    yield runtime_ids.append
    with server.client() as client:
        answers = [client.post(f"/v1/runtimes/{runtime_id}/stop") for runtime_id in runtime_ids]
    assert all(a.status_code in (200, 404) for a in answers), [a.text for a in answers]


@pytest.fixture
def stop_afterwards(live):
    yield from stop_in_teardown(live)


def lease(client: httpx.Client, runtime: dict, ttl: int = 600) -> httpx.Response:
    return client.post(
        f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections",
        json={"protocol": "cdp", "ttlSeconds": ttl},
    )


os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

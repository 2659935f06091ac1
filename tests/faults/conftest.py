"""Fault-test infrastructure: a PRIVATE PostgreSQL cluster and a PRIVATE redis-server on free loopback
ports, which tests stop, kill and restart at will. The machine's own PostgreSQL (5432) and Redis (6379)
are never touched.

Sync helpers (usable from sync tests driving `bctrl-server serve` subprocesses and from async tests
driving in-process servers):

    PrivatePostgres   .start() .stop(mode="fast"|"immediate") .restart() .create_database() -> url
    PrivateRedis      .start() .stop() .kill() .restart() .url

Fixtures:

    private_pg        session-wide cluster, guaranteed running at the start of each test
    private_redis     session-wide redis-server, guaranteed running (and flushed) at each test
    fault_db          a fresh database with the schema (Alembic) on private_pg: its SQLAlchemy URL
    fault_server      factory: fault_server(redis=True, **env) -> LiveServer on private_pg (+ private_redis)
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from app.core.migrate import upgrade
from tests.e2e.conftest import LiveServer, _run, start_server, stop_server
from tests.support import chromium_pids, free_port, profile_fragment


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL server binaries ({name}) not installed")
    return found[-1]


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root: every server command runs as the `postgres` user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, capture_output=True, text=True, **kw)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivatePostgres:
    """A throwaway cluster: trust auth, listening on 127.0.0.1:<free port> only, data in a temp dir."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="bctrl-faults-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        done = _as_postgres(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base}'\nmax_connections = 200\n"
                # Safe to skip while the machine itself stays up (an immediate stop is a crash of
                # PostgreSQL, not of the kernel); synchronous_commit stays on, or commits vanish.
                "fsync = off\nfull_page_writes = off\n"
            )

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        return _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "status"]).returncode == 0

    def start(self) -> None:
        done = _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start"])
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{self.log.read_text()}")

    def stop(self, mode: str = "fast") -> None:
        """fast: disconnect clients and shut down cleanly; immediate: like a crash (recovery at start)."""
        done = _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"])
        if done.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}{done.stderr}")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-XAtqc", sql],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout

    def create_database(self, migrate: bool = True) -> str:
        """A new database with the schema built by Alembic (app.core.migrate.upgrade); its SQLAlchemy URL."""
        name = f"bctrl_fault_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        if migrate:
            _run(upgrade(url))
        return url

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateRedis:
    """A redis-server with no persistence on 127.0.0.1:<free port>; restarts keep the port (and lose data)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.binary = shutil.which("redis-server") or pytest.skip("redis-server not installed")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)

    def _end(self, sig: int) -> None:
        if self.running():
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Redis hangs: connections are accepted by the kernel, nothing is answered (SIGSTOP)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "FLUSHALL"], capture_output=True)


@pytest.fixture(scope="session")
def _pg_cluster():
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def private_pg(_pg_cluster) -> PrivatePostgres:
    """The private cluster, running when the test starts (a previous test may have stopped it)."""
    if not _pg_cluster.running():
        _pg_cluster.start()
    return _pg_cluster


@pytest.fixture(scope="session")
def _redis_server():
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture
def private_redis(_redis_server) -> PrivateRedis:
    if not _redis_server.running():
        _redis_server.start()
    _redis_server.flush()
    return _redis_server


@pytest.fixture
def fault_db(private_pg) -> str:
    return private_pg.create_database()


@pytest.fixture
def fault_server(tmp_path, private_pg, private_redis):
    """fault_server(redis=True, **env): a `bctrl-server serve` process on the private cluster (a fresh
    database) and, when redis is true, on the private redis-server (else the in-process lock).
    Stopped at teardown, with a check that it left no Chromium behind."""
    started: list[LiveServer] = []

    def factory(redis: bool = True, database_url: str | None = None, **env: str) -> LiveServer:
        url = database_url or private_pg.create_database()
        values = {"BCTRL_REDIS_URL": private_redis.url if redis else "", **env}
        server = start_server(
            tmp_path / f"srv{len(started)}",
            url,
            f"bctrl_fault_{uuid.uuid4().hex}",
            f"bctrl-fault-{uuid.uuid4().hex[:8]}",
            **values,
        )
        started.append(server)
        return server

    yield factory
    # Backends back up first, so a clean shutdown can stop its browsers.
    if not private_pg.running():
        private_pg.start()
    if not private_redis.running():
        private_redis.start()
    for server in started:
        stop_server(server)
    for server in started:
        assert chromium_pids(profile_fragment(server.data_dir)) == [], "Chromium left behind"


def wait_until(check, timeout: float, interval: float = 0.1):
    """Poll a sync check until truthy; returns (value, seconds waited). Fails with the last value."""
    started = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def first_2xx_after(client: httpx.Client, method: str, path: str, timeout: float = 30.0, **kw):
    """Seconds until `method path` first answers 2xx (each try bounded to 5 s), and the answers seen before."""
    seen: list[int] = []
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            r = client.request(method, path, timeout=5, **kw)
            if 200 <= r.status_code < 300:
                return time.monotonic() - started, seen
            seen.append(r.status_code)
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)
        time.sleep(0.05)
    raise AssertionError(f"no 2xx within {timeout}s: {seen[-10:]}")

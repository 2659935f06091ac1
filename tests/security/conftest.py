"""Security fixtures: real `bctrl-server serve` processes (as e2e), one on the embedded defaults
(SQLite in the data directory, the configuration the escalation was found on) and one on
PostgreSQL and Redis (whose ports a browser must not reach), and the e2e page server."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import PAGES, cluster, start_server, stop_server
from tests.support import PageServer, chromium_pids, profile_fragment


@contextmanager
def embedded_server(tmp, **extra: str):
    """A server on SQLite in its data directory, with the in-process lock (no Redis)."""
    data_dir = tmp / "srv"
    server = start_server(data_dir, "", f"bctrl_sec_{uuid.uuid4().hex}", "unused", BCTRL_REDIS_URL="", **extra)
    try:
        yield server
    finally:
        stop_server(server)
        assert chromium_pids(profile_fragment(server.data_dir)) == [], "Chromium left behind"


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("sec-embedded")) as server:
        yield server


@pytest.fixture(scope="session")
def backed(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("sec-backed")) as servers:
        yield servers[0]


@pytest.fixture(scope="session")
def pages():
    server = PageServer(PAGES)
    yield server
    server.close()


@contextmanager
def active_runtime(server):
    with server.client() as client:
        space = client.post("/v1/spaces", json={"name": f"sec-{uuid.uuid4().hex[:6]}"}).json()
        rt = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert rt["status"] == "active", rt
        try:
            yield rt
        finally:
            client.post(f"/v1/spaces/{space['id']}/runtimes/{rt['id']}/stop")

"""Fixtures of the MCP tests: real server processes (PostgreSQL, Redis, Chromium) with /_mcp/server,
pages served on 127.0.0.1, and the official `mcp` client over Streamable HTTP."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import cluster
from tests.support import PageServer

PAGES = Path(__file__).parent / "pages"
MCP_PATH = "/_mcp/server"


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """Two replicas on one database and one Redis namespace: an MCP client may reach either."""
    with cluster(tmp_path_factory.mktemp("mcp"), count=2) as started:
        yield started


@pytest.fixture(scope="session")
def live(servers):
    return servers[0]


@pytest.fixture(scope="session")
def pages():
    server = PageServer(PAGES)
    yield server
    server.close()


@asynccontextmanager
async def mcp_client(url: str, key: str | None, **headers: str):
    """The official MCP client over Streamable HTTP, with `Authorization: Bearer <key>`."""
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
        async with Client(streamable_http_client(url + MCP_PATH, http_client=http)) as client:
            yield client

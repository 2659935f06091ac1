"""The MCP browser servers people already use, pointed at a browser of ours by its CDP URL:
`@playwright/mcp --cdp-endpoint <cdpUrl>` and `chrome-devtools-mcp --wsEndpoint <cdpUrl>` (from the npm
registry, pinned in tests/mcp/clients/package-lock.json), each driven through its own MCP stdio interface
by the official `mcp` client to open a page served on 127.0.0.1 and read it."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

CLIENTS = Path(__file__).parent / "clients"
MODULES = CLIENTS / "node_modules"
PLAYWRIGHT_MCP = MODULES / "@playwright" / "mcp" / "cli.js"
DEVTOOLS_MCP = MODULES / "chrome-devtools-mcp" / "build" / "src" / "bin" / "chrome-devtools-mcp.js"
CURRENT = {"BCTRL-Version": "2026-10-03"}


@pytest.fixture(scope="module")
def installed():
    """The pinned packages (`npm ci` from the lock file when node_modules is missing)."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    if not (PLAYWRIGHT_MCP.exists() and DEVTOOLS_MCP.exists()):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True, timeout=600)


@pytest.fixture
def cdp_url(live):
    """A running browser's CDP URL (its current run's), the browser deleted afterwards."""
    with httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}", **CURRENT}, timeout=90
    ) as client:
        made = client.post("/v1/browsers", params={"wait": 30}, json={"name": f"cdp-mcp-{uuid.uuid4().hex[:6]}"})
        assert made.status_code == 201 and made.json()["status"] == "running", made.text
        try:
            yield made.json()["currentRun"]["connections"]["cdpUrl"]
        finally:
            client.delete(f"/v1/browsers/{made.json()['id']}")


def text_of(result) -> str:
    assert not result.is_error, result.content
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("form", ["ws", "http"])
async def test_playwright_mcp_drives_our_browser(installed, cdp_url, pages, form, tmp_path):
    """The websocket URL as given, and its http(s) form, from which Playwright discovers the websocket
    through /json/version on the lease endpoint."""
    endpoint = cdp_url if form == "ws" else "http" + cdp_url.removeprefix("ws")
    server = StdioServerParameters(
        command="node",
        args=[str(PLAYWRIGHT_MCP), "--cdp-endpoint", endpoint, "--output-dir", str(tmp_path)],
        cwd=str(tmp_path),
    )
    async with Client(server, read_timeout_seconds=120) as client:
        navigated = text_of(await client.call_tool("browser_navigate", {"url": f"{pages.url}/hello.html"}))
        assert "MCP hello" in navigated
        snapshot = text_of(await client.call_tool("browser_snapshot", {}))
        assert "Hello from a local page" in snapshot
        read = text_of(
            await client.call_tool(
                "browser_evaluate", {"function": "() => document.getElementById('greeting').textContent"}
            )
        )
        assert "Hello from a local page" in read


async def test_chrome_devtools_mcp_drives_our_browser(installed, cdp_url, pages, tmp_path):
    server = StdioServerParameters(
        command="node",
        args=[str(DEVTOOLS_MCP), "--wsEndpoint", cdp_url, "--no-usage-statistics", "--no-performance-crux"],
        cwd=str(tmp_path),
    )
    async with Client(server, read_timeout_seconds=120) as client:
        opened = text_of(await client.call_tool("new_page", {"url": f"{pages.url}/hello.html"}))
        assert "hello.html" in opened
        listed = text_of(await client.call_tool("list_pages", {}))
        assert "hello.html" in listed
        page_id = next(
            line.split(":")[0].strip() for line in listed.splitlines() if "hello.html" in line and ":" in line
        )
        snapshot = text_of(await client.call_tool("take_snapshot", {"pageId": int(page_id)}))
        assert "Hello from a local page" in snapshot

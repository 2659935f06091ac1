"""A run's webMcpUrl (the flat generation's connection, `started_browser().web_mcp_url` in the SDK):
the WebMCP tools a page of the browser registers, listed and called with the official `mcp` client over
Streamable HTTP, each call a run event; refused once the run has ended or with a wrong token."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from bctrl.legacy import Bctrl
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from playwright.async_api import async_playwright

from tests.e2e.test_cdp import events_of


@pytest.fixture
def sdk(live):
    return Bctrl(api_key=live.api_key, base_url=live.url)


def _client(url: str):
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=120)))


async def _page_with_tools(cdp_url: str, page_url: str) -> None:
    """Open the page through the run's own CDP URL, as a user's Playwright would, and leave it open."""
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(cdp_url)
        page = await browser.contexts[0].new_page()
        await page.goto(page_url)
        assert await page.title() == "WebMCP tools registered"
        # Playwright lets go of the browser; the page stays open in it.


async def test_a_pages_tools_are_listed_and_called_through_the_runs_web_mcp_url(live, sdk, pages):
    with sdk.runtimes.started_browser(name="webmcp") as rt:
        web_mcp_url = rt.web_mcp_url
        assert web_mcp_url and web_mcp_url.startswith(f"{live.url}/_mcp/webmcp/"), web_mcp_url
        await _page_with_tools(rt.cdp_url, f"{pages.url}/webmcp.html")

        async with _client(web_mcp_url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert {"add", "write", "broken"} <= set(tools), sorted(tools)
            assert tools["add"].description == "Add two numbers"
            assert tools["add"].input_schema["required"] == ["a", "b"]
            assert tools["add"].annotations.read_only_hint is True

            added = await client.call_tool("add", {"a": 2, "b": 40})
            assert not added.is_error and added.content[0].text == "42", added

            written = await client.call_tool("write", {"text": "hello from MCP"})
            assert not written.is_error, written
            failed = await client.call_tool("broken", {})
            assert failed.is_error, failed
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("nobody_registered_this", {})
            assert "nobody_registered_this" in str(unknown.value)

        # A second tab registers the same names: neither keeps the plain name, so a call picked from
        # the list cannot land in the other tab's tool.
        await _page_with_tools(rt.cdp_url, f"{pages.url}/webmcp.html")
        async with _client(web_mcp_url) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            adds = [n for n in names if n.startswith("add")]
            assert len(adds) == 2 and "add" not in adds, names
            assert (await client.call_tool(adds[1], {"a": 1, "b": 1})).content[0].text == "2"

        # The tool changed the page a user sees.
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(rt.cdp_url)
            tabs = [p for c in browser.contexts for p in c.pages if p.url.endswith("/webmcp.html")]
            texts = sorted([await tab.text_content("#out") for tab in tabs])
            assert texts == ["hello from MCP", "nothing yet"], texts  # the tab that had the tool, only

        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.api_key}"}) as api:
            calls = events_of(api, rt.run_id, type="webmcp.tool_called")
        assert [(c["data"]["tool"], c["data"]["status"]) for c in calls] == [
            ("add", "completed"),
            ("write", "completed"),
            ("broken", "error"),
            ("add", "completed"),
        ], calls
        assert all(c["pageId"] and c["data"]["channel"] == "webmcp" for c in calls)
        # What the page was given, answered or threw is not written.
        assert "hello from MCP" not in str(calls) and "the page says no" not in str(calls)

    # The run has ended: its webMcpUrl is refused like its cdpUrl.
    async with httpx.AsyncClient() as http:
        ended = await http.post(web_mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert (ended.status_code, ended.json()["code"]) == (409, "connection.closed"), ended.text


async def test_only_a_tabs_own_document_offers_tools(sdk, pages):
    """Chromium 156 reports the tools of a tab's top document only: a same-origin iframe's registerTool
    never reaches `WebMCP.toolsAdded`. So a tool's URL (in `_meta` and in its run event) is its tab's.
    Should a later Chromium report frames' tools, this fails: the URL must then be the frame's."""
    with sdk.runtimes.started_browser(name="webmcp-frames") as rt:
        await _page_with_tools(rt.cdp_url, f"{pages.url}/webmcp_framed.html")
        async with _client(rt.web_mcp_url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"top_tool"}, sorted(tools)
            assert tools["top_tool"].meta["url"] == f"{pages.url}/webmcp_framed.html"
            assert (await client.call_tool("top_tool", {})).content[0].text == "top"


def test_a_wrong_token_is_refused(live, sdk):
    with sdk.runtimes.started_browser(name="webmcp-token") as rt:
        wrong = rt.web_mcp_url.split("?token=")[0] + "?token=not-the-token"
        answer = httpx.post(wrong, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert (answer.status_code, answer.json()["code"]) == (401, "connection.token_invalid"), answer.text
        missing = httpx.post(rt.web_mcp_url.split("?")[0], json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert missing.status_code == 401

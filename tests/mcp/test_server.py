"""The MCP server at /_mcp/server, driven by the official `mcp` Python client over Streamable HTTP against
real server processes (two replicas on one database), real Chromium and a page served on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
import zlib

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from playwright.async_api import async_playwright

from tests.e2e.conftest import other_account_key
from tests.mcp.conftest import MCP_PATH, mcp_client

CURRENT = {"BCTRL-Version": "2026-10-03"}


def rest(live, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {key or live.api_key}", **CURRENT}, timeout=90
    )


@pytest.fixture
def browsers(live):
    """Browsers a test creates (by id), deleted (so stopped) in teardown whatever the test's outcome."""
    made: list[str] = []
    yield made.append
    with rest(live) as client:
        for browser_id in made:
            # A browser still starting (a create without `wait`, on a loaded host) is 409 until it settles.
            deadline = time.monotonic() + 90
            answer = client.delete(f"/v1/browsers/{browser_id}")
            while answer.status_code == 409 and time.monotonic() < deadline:
                time.sleep(0.5)
                answer = client.delete(f"/v1/browsers/{browser_id}")
            assert answer.status_code in (200, 404), answer.text


@pytest.fixture
def other_key(live) -> str:
    """A key of another account of the same server, made by the CLI as an operator would."""
    return other_account_key(live, "mcp")


def structured(result: types.CallToolResult) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None, result.content
    return result.structured_content


def error_of(result: types.CallToolResult) -> dict:
    """The API's error envelope carried by a tool error."""
    assert result.is_error, result
    return json.loads(result.content[0].text)["error"]


def png_pixel(png: bytes, x: int, y: int) -> tuple[int, ...]:
    """One pixel of an 8-bit RGB(A) PNG (enough of a decoder to read a screenshot's colour)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6), header
    bpp = 3 if colour == 2 else 4
    raw, stride, previous = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    for row in range(y + 1):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        previous = line
    return tuple(previous[x * bpp : x * bpp + 3])


async def test_tools_are_the_current_operations_with_schemas(live):
    async with mcp_client(live.url, live.api_key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in (
        "bctrl_browsers_create",
        "bctrl_browsers_get",
        "bctrl_browsers_stop",
        "bctrl_browsers_pages_open",
        "bctrl_browsers_pages_screenshot",
        "bctrl_browsers_computer_click",
        "bctrl_runs_get",
        "bctrl_events_list",
        "bctrl_views_create",
        "bctrl_files_list",
        "bctrl_tasks_create",
        "bctrl_secrets_list",
    ):
        assert name in tools, sorted(tools)
    # Secrets stay people-only: nothing reveals or writes a secret's value.
    assert not {"bctrl_secrets_reveal", "bctrl_secrets_create", "bctrl_secrets_update"} & set(tools)
    opened = tools["bctrl_browsers_pages_open"]
    assert opened.input_schema["type"] == "object"
    assert opened.input_schema["required"] == ["browser_id"]
    body = opened.input_schema["properties"]["body"]["$ref"].rsplit("/", 1)[1]
    assert "url" in opened.input_schema["$defs"][body]["properties"]
    assert opened.output_schema is not None and opened.output_schema["type"] == "object"
    assert "POST /v1/browsers/{browser_id}/pages" in opened.description
    assert tools["bctrl_browsers_get"].annotations.read_only_hint is True


async def test_a_browser_driven_through_mcp(live, pages, browsers):
    async with mcp_client(live.url, live.api_key) as client:
        made = structured(
            await client.call_tool(
                "bctrl_browsers_create", {"wait": 30, "body": {"name": f"mcp-{uuid.uuid4().hex[:6]}"}}
            )
        )
        browsers(made["id"])
        assert made["status"] == "running", made
        browser_id = made["id"]

        opened = structured(
            await client.call_tool(
                "bctrl_browsers_pages_open", {"browser_id": browser_id, "body": {"url": f"{pages.url}/hello.html"}}
            )
        )
        page = opened["data"]
        assert page["title"] == "MCP hello"

        shot = await client.call_tool(
            "bctrl_browsers_pages_screenshot",
            {"browser_id": browser_id, "page_id": page["id"], "body": {"format": "png"}},
        )
        assert not shot.is_error, shot.content
        images = [c for c in shot.content if isinstance(c, types.ImageContent)]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert png_pixel(base64.b64decode(images[0].data), 5, 300) == (0, 255, 0)  # the page's green
        assert "base64 characters" in shot.content[0].text  # the text leaves the bytes to the image

        events = structured(await client.call_tool("bctrl_events_list", {"browser": browser_id, "limit": 100}))
        opened_events = [e for e in events["data"] if e["id"] == opened["eventId"]]
        assert len(opened_events) == 1, [e["type"] for e in events["data"]]
        event = opened_events[0]
        assert event["actor"]["type"] == "api_key" and event["actor"]["id"]

        stopped = structured(await client.call_tool("bctrl_browsers_stop", {"browser_id": browser_id, "wait": 30}))
        assert stopped["status"] == "idle", stopped
        run = structured(await client.call_tool("bctrl_runs_get", {"run_id": page["runId"]}))
        assert run["status"] == "ended", run
    with rest(live) as check:
        assert check.get(f"/v1/browsers/{browser_id}").json()["status"] == "idle"
    assert event["channel"] == "tool", event


async def test_any_replica_serves_any_call(servers, browsers):
    """Stateless: a browser made through one replica is read and stopped through the other."""
    first, second = servers
    async with mcp_client(first.url, first.api_key) as client:
        made = structured(await client.call_tool("bctrl_browsers_create", {"body": {"name": "replicas"}}))
        browsers(made["id"])
    async with mcp_client(second.url, second.api_key) as client:
        got = structured(await client.call_tool("bctrl_browsers_get", {"browser_id": made["id"], "wait": 30}))
        assert got["id"] == made["id"] and got["status"] == "running"


async def test_unknown_tool_and_bad_arguments_are_mcp_errors_naming_the_field(live):
    async with mcp_client(live.url, live.api_key) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("bctrl_browsers_explode", {})
        assert unknown.value.code == types.INVALID_PARAMS and "bctrl_browsers_explode" in unknown.value.message

        with pytest.raises(MCPError) as missing:
            await client.call_tool("bctrl_browsers_get", {})
        assert missing.value.data["fields"][0]["field"] == "browser_id"

        with pytest.raises(MCPError) as wrong:
            await client.call_tool("bctrl_browsers_pages_open", {"browser_id": "x", "body": {"url": 5}})
        assert wrong.value.data["fields"][0]["field"] == "body.url", wrong.value.data

        with pytest.raises(MCPError) as extra:
            await client.call_tool("bctrl_browsers_list", {"colour": "red"})
        assert extra.value.data["fields"][0]["field"] == "colour"

        # The server is fine after all of them.
        assert not (await client.call_tool("bctrl_browsers_list", {})).is_error


async def test_another_accounts_browser_is_not_found(live, other_key, browsers):
    async with mcp_client(live.url, live.api_key) as client:
        made = structured(await client.call_tool("bctrl_browsers_create", {"body": {"name": "mine"}}))
        browsers(made["id"])
    async with mcp_client(live.url, other_key) as client:
        for name, arguments in (
            ("bctrl_browsers_get", {"browser_id": made["id"]}),
            ("bctrl_browsers_stop", {"browser_id": made["id"]}),
        ):
            error = error_of(await client.call_tool(name, arguments))
            assert error["code"] == "browser.not_found" or error["code"].endswith("not_found"), error
        listed = structured(await client.call_tool("bctrl_browsers_list", {}))
        assert made["id"] not in [b["id"] for b in listed["data"]]
    with rest(live) as check:
        assert check.get(f"/v1/browsers/{made['id']}").json()["status"] == "running"


async def test_no_key_or_a_revoked_key_is_refused(live):
    async with httpx.AsyncClient() as raw:
        answer = await raw.post(
            live.url + MCP_PATH,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "auth.required" or "key" in answer.json()["error"]["message"].lower()
    assert answer.headers["www-authenticate"].startswith("Bearer")

    with rest(live) as admin:
        made = admin.post("/v1/api-keys", json={"name": "mcp-revoked"})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["secret"], made.json()["data"]["id"]
    async with mcp_client(live.url, key) as client:
        assert not (await client.call_tool("bctrl_browsers_list", {})).is_error
        with rest(live) as admin:
            assert admin.delete(f"/v1/api-keys/{key_id}").status_code == 200
        with pytest.raises(MCPError):  # the session's next request is refused (the client says no more)
            await client.call_tool("bctrl_browsers_list", {})
    async with httpx.AsyncClient() as raw:
        answer = await raw.post(
            live.url + MCP_PATH,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {key}"},
        )
    assert answer.status_code == 401, answer.text


async def test_a_narrowed_key_lists_only_the_tools_it_may_call(live):
    with rest(live) as admin:
        made = admin.post("/v1/api-keys", json={"name": "mcp-narrow", "scopes": ["browsers:read", "runs:read"]})
        assert made.status_code == 201, made.text
        key = made.json()["secret"]
    async with mcp_client(live.url, key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"bctrl_browsers_get", "bctrl_browsers_list"} <= names, sorted(names)
        assert "bctrl_browsers_create" not in names and "bctrl_tasks_list" not in names, sorted(names)
        assert all(tool.annotations.read_only_hint for tool in (await client.list_tools()).tools)
        # Calling a tool it was not shown is refused by the API, as REST would be.
        refused = await client.call_tool("bctrl_browsers_create", {"body": {}})
        assert error_of(refused)["code"] == "auth.forbidden"
    async with mcp_client(live.url, live.api_key) as client:
        assert "bctrl_browsers_create" in {tool.name for tool in (await client.list_tools()).tools}


async def test_a_secrets_metadata_is_read_through_mcp_never_its_value(live):
    path = f"mcp/{uuid.uuid4().hex[:8]}/db"
    with rest(live) as admin:
        made = admin.post("/v1/secrets", json={"type": "value", "path": path, "value": "hunter2-never-shown"})
        assert made.status_code == 201, made.text
    async with mcp_client(live.url, live.api_key) as client:
        got = structured(await client.call_tool("bctrl_secrets_get", {"secret": path}))
        assert got["path"] == path
        versions = await client.call_tool("bctrl_secrets_versions", {"secret": path})
        assert not versions.is_error, versions.content
        for answer in (got, versions.content[0].text):
            assert "hunter2-never-shown" not in json.dumps(answer)


async def test_help_topics_are_resources(live):
    async with mcp_client(live.url, live.api_key) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"bctrl://help", "bctrl://docs/openapi.json", "bctrl://help/browsers.create"} <= listed
        topic = await client.read_resource("bctrl://help/browsers.create")
        body = json.loads(topic.contents[0].text)
        assert body["api"] == {"method": "POST", "path": "/v1/browsers"}
        with pytest.raises(MCPError):
            await client.read_resource("bctrl://help/no.such.topic")


async def test_a_tool_call_on_a_browser_a_cdp_client_holds_is_refused(live, pages, browsers):
    async with mcp_client(live.url, live.api_key) as client:
        made = structured(await client.call_tool("bctrl_browsers_create", {"wait": 30, "body": {"name": "held"}}))
        browsers(made["id"])
        cdp_url = made["currentRun"]["connections"]["cdpUrl"]
        async with async_playwright() as pw:
            connected = await pw.chromium.connect_over_cdp(cdp_url)
            try:
                held = await client.call_tool(
                    "bctrl_browsers_computer_click", {"browser_id": made["id"], "body": {"coordinate": [5, 5]}}
                )
                error = error_of(held)
                assert error["code"] == "browser.control_held" and "CDP client" in error["message"], error
                assert (await connected.contexts[0].pages[0].evaluate("1 + 1")) == 2  # the client still drives it
            finally:
                await connected.close()
        # Let go: the same call goes through (the lock is not left held by the refused call).
        for _ in range(50):
            moved = await client.call_tool(
                "bctrl_browsers_computer_move", {"browser_id": made["id"], "body": {"coordinate": [5, 5]}}
            )
            if not moved.is_error:
                break
            assert error_of(moved)["code"] == "browser.control_held"
            await anyio.sleep(0.2)
        assert not moved.is_error, moved.content


async def test_a_client_that_hangs_up_mid_call_leaves_the_operation_whole(live, browsers):
    """A 3 s computer-use wait whose caller hangs up after 1 s runs to its end (shielded): its run event is
    written, with channel tool, and the browser's controller is given back (the next action goes through)."""
    async with mcp_client(live.url, live.api_key) as client:
        made = structured(await client.call_tool("bctrl_browsers_create", {"wait": 30, "body": {"name": "hangup"}}))
        browsers(made["id"])
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "bctrl_browsers_computer_wait",
            "arguments": {"browser_id": made["id"], "body": {"duration": 3}},
        },
    }
    headers = {
        "Authorization": f"Bearer {live.api_key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=1.0)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post(live.url + MCP_PATH, json=call, headers=headers)
    async with mcp_client(live.url, live.api_key) as client:
        waited: list[dict] = []
        for _ in range(100):
            listed = structured(await client.call_tool("bctrl_events_list", {"browser": made["id"], "limit": 100}))
            waited = [e for e in listed["data"] if e["type"] == "computer.wait"]
            if waited:
                break
            await anyio.sleep(0.1)
        assert len(waited) == 1, [e["type"] for e in listed["data"]]
        assert waited[0]["channel"] == "tool"
        moved = await client.call_tool(
            "bctrl_browsers_computer_move", {"browser_id": made["id"], "body": {"coordinate": [5, 5]}}
        )
        assert not moved.is_error, moved.content

"""What an MCP tool call adds: `bctrl_browsers_get` through /_mcp/server (the official `mcp` client over
Streamable HTTP) beside the same `GET /v1/browsers/{id}` over REST, alternated, on one running browser of
one server process; medians (and p90) of N each, and the difference is the MCP layer's cost (JSON-RPC,
the per-request stateless session, argument validation, the in-process REST call). A third figure posts
the same `tools/call` as plain JSON-RPC over httpx: what the server adds, without the MCP client's own cost.

Run: `.venv/bin/python -m bench.mcp_latency [--calls N]` (default 200).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.harness import machine, median, percentile, server

CURRENT = {"BCTRL-Version": "2026-10-03", "Authorization": "Bearer bench-key"}


RAW_HEADERS = {
    "Authorization": "Bearer bench-key",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


async def _measure(url: str, browser_id: str, calls: int) -> tuple[list[float], list[float], list[float]]:
    rest: list[float] = []
    tool: list[float] = []
    raw: list[float] = []
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "bctrl_browsers_get", "arguments": {"browser_id": browser_id}},
    }
    async with (
        httpx.AsyncClient(base_url=url, headers=CURRENT, timeout=60) as plain,
        httpx2.AsyncClient(headers={"Authorization": "Bearer bench-key"}, timeout=60) as http,
        Client(streamable_http_client(f"{url}/_mcp/server", http_client=http)) as client,
    ):
        await client.list_tools()  # the catalog is built once per process: not part of a call's cost
        for _ in range(10):  # warm both paths
            await plain.get(f"/v1/browsers/{browser_id}")
            await client.call_tool("bctrl_browsers_get", {"browser_id": browser_id})
        for _ in range(calls):
            started = time.perf_counter()
            answer = await plain.get(f"/v1/browsers/{browser_id}")
            rest.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            started = time.perf_counter()
            result = await client.call_tool("bctrl_browsers_get", {"browser_id": browser_id})
            tool.append((time.perf_counter() - started) * 1000)
            assert not result.is_error and result.structured_content["id"] == browser_id, result.content
            started = time.perf_counter()
            answer = await plain.post("/_mcp/server", json=call, headers=RAW_HEADERS)
            raw.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and not answer.json()["result"].get("isError"), answer.text
    return rest, tool, raw


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    with server() as (url, client, _data):
        made = client.post("/v1/browsers", params={"wait": 30}, json={"name": "bench-mcp"}, headers=CURRENT)
        assert made.status_code == 201 and made.json()["status"] == "running", made.text
        browser_id = made.json()["id"]
        try:
            rest, tool, raw = asyncio.run(_measure(url, browser_id, args.calls))
        finally:
            client.delete(f"/v1/browsers/{browser_id}", headers=CURRENT)
    rest_median, tool_median = median(rest), median(tool)
    print(f"MCP tool call vs REST, bctrl_browsers_get / GET /v1/browsers/{{id}}, {args.calls} each ({machine()}):")
    print(f"  REST  median {rest_median:6.2f} ms  p90 {percentile(rest, 90):6.2f} ms")
    print(f"  MCP   median {tool_median:6.2f} ms  p90 {percentile(tool, 90):6.2f} ms  (the official mcp client)")
    print(f"  raw   median {median(raw):6.2f} ms  p90 {percentile(raw, 90):6.2f} ms  (tools/call posted as JSON-RPC)")
    print(
        f"  added by MCP: {tool_median - rest_median:+.2f} ms at the median (x{tool_median / rest_median:.2f} the REST call)"
    )
    print(f"  added by the server alone: {median(raw) - rest_median:+.2f} ms at the median (raw minus REST)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

"""Invocation engine overhead per step: an invocation's running time minus the time its LLM calls took,
divided by its steps, with a stand-in LLM on loopback that answers at once; for `act` and for a
5-step agent. The baseline beside it is the bare cost of the same browser work done directly with
Playwright (snapshot plus click), measured in the same run. Target: under 150 ms per step.

    python -m bench.invocations [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from datetime import datetime

from playwright.async_api import async_playwright

from bench.harness import driver_state, machine, pages, server
from tests.ai.standin import StandInLlm


def _ref(body: dict, pattern: str) -> str:
    return re.search(pattern + r"[^\n\\]*?\[ref=(\w+)\]", str(body)).group(1)


def _span_ms(inv: dict) -> float:
    start, end = (datetime.fromisoformat(inv[k].replace("Z", "+00:00")) for k in ("startedAt", "finishedAt"))
    return (end - start).total_seconds() * 1000


def _overhead(client, inv: dict) -> tuple[float, int]:
    waited = client.post(f"/v1/invocations/{inv['id']}/wait", json={"timeoutMs": 60_000}).json()["invocation"]
    assert waited["status"] == "succeeded", waited
    events = client.get(
        f"/v1/runs/{waited['runId']}/events",
        params={"category": "invocation", "type": "invocation.llm_call", "limit": 200},
    ).json()
    llm_ms = sum(
        e["data"]["latencyMs"]
        for e in events["data"]
        if e["type"] == "invocation.llm_call" and e["data"]["invocationId"] == inv["id"]
    )
    steps = max(1, waited["stepCount"])
    return (_span_ms(waited) - llm_ms) / steps, steps


async def _direct_step(ws_url: str, rounds: int) -> float:
    """The same browser work without the engine: snapshot, then click a ref from it."""
    times = []
    async with async_playwright() as pw:
        browser = await pw.chromium.connect_over_cdp(ws_url)
        page = browser.contexts[0].pages[-1]
        for _ in range(rounds):
            t0 = time.perf_counter()
            snap = await page.aria_snapshot(mode="ai")
            ref = re.search(r'button "Add to wishlist"[^\n]*?\[ref=(\w+)\]', snap).group(1)
            await page.locator(f"aria-ref={ref}").click()
            times.append((time.perf_counter() - t0) * 1000)
        await browser.close()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    llm = StandInLlm()
    try:
        with server() as (_, client, data_dir), pages() as pages_url:
            client.post(
                "/v1/ai-connections",
                json={
                    "label": "stand-in",
                    "provider": "openai-compatible",
                    "baseUrl": f"{llm.base}/v1",
                    "apiKey": "sk-test",
                    "defaultModel": "standin",
                },
            )
            runtime = client.post("/v1/runtimes", json={"start": True, "recording": False}).json()
            ws_url = driver_state(data_dir, runtime["id"])["wsUrl"]

            async def goto() -> None:
                async with async_playwright() as pw:
                    browser = await pw.chromium.connect_over_cdp(ws_url)
                    page = browser.contexts[0].pages[0]
                    await page.goto(f"{pages_url}/shop.html")
                    await browser.close()

            asyncio.run(goto())
            path = f"/v1/runtimes/{runtime['id']}/invocations"

            act = []
            for i in range(args.rounds + 1):
                llm.then(
                    lambda body: {
                        "tool": "perform_action",
                        "args": {"ref": _ref(body, 'button "Add to wishlist"'), "method": "click"},
                    }
                )
                overhead, _ = _overhead(client, client.post(path, json={"action": "act", "instruction": "wish"}).json())
                if i:  # the first one starts the worker's Playwright driver
                    act.append(overhead)
            agent = []
            for _ in range(max(3, args.rounds // 2)):
                llm.then(
                    *[{"tool": "scroll", "args": {"direction": "down"}}] * 4,
                    {"tool": "done", "args": {"success": True, "result": "ok"}},
                )
                overhead, steps = _overhead(
                    client,
                    client.post(path, json={"action": "stagehandAgent", "instruction": "scroll", "maxSteps": 5}).json(),
                )
                assert steps == 5
                agent.append(overhead)
            direct = asyncio.run(_direct_step(ws_url, args.rounds))
            client.post(f"/v1/runtimes/{runtime['id']}/stop")
    finally:
        llm.close()
    print(f"invocations ({machine()}; stand-in LLM answering at once)")
    print(f"  direct Playwright step (snapshot + click)  : {direct:6.1f} ms")
    print(
        f"  act, overhead per step (LLM time excluded) : median {statistics.median(act):6.1f} ms  "
        f"max {max(act):6.1f} ms   ratio to direct {statistics.median(act) / direct:.2f}"
    )
    print(
        f"  5-step agent, overhead per step            : median {statistics.median(agent):6.1f} ms  "
        f"max {max(agent):6.1f} ms"
    )
    worst = max(statistics.median(act), statistics.median(agent))
    print(f"  target < 150 ms per step: {worst:.0f} ms ({'met' if worst < 150 else 'missed'})")


if __name__ == "__main__":
    main()

"""Task engine overhead per agent step: a task's running time minus the time its LLM calls took,
divided by its steps, with a stand-in LLM on loopback that answers at once. A 5-step task through
`/v1/tasks` (4 calls of the `browser.pages.list` tool on a running browser, then `done`) beside a
5-step agent through the flat invocation route (4 scrolls, then `done`) on the same browser, measured
in the same run; the ratio is tasks over invocations. Target: under 50 ms per task step.

    python -m bench.tasks [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
from datetime import datetime
from typing import Any

from bench.harness import machine, server
from tests.ai.standin import StandInLlm

V = {"BCTRL-Version": "2026-10-03"}
STEPS = 5


def _span_ms(row: dict) -> float:
    start, end = (datetime.fromisoformat(row[k].replace("Z", "+00:00")) for k in ("startedAt", "finishedAt"))
    return (end - start).total_seconds() * 1000


def _latencies(value: Any) -> list[float]:
    """Every `latencyMs` in an event (wherever the shape nests its data)."""
    found: list[float] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "latencyMs" and isinstance(inner, int | float):
                found.append(float(inner))
            else:
                found += _latencies(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _latencies(inner)
    elif isinstance(value, str) and "latencyMs" in value:
        import orjson

        try:
            found += _latencies(orjson.loads(value))
        except orjson.JSONDecodeError:
            pass
    return found


def _task_overhead(client, task_id: str) -> float:
    task = client.get(f"/v1/tasks/{task_id}", params={"wait": 60}, headers=V).json()
    assert task["status"] == "succeeded", task
    events = client.get("/v1/events", params={"task": task_id, "type": "task.llm_call", "limit": 100}, headers=V)
    llm_ms = sum(_latencies(events.json()["data"]))
    steps = client.get(f"/v1/events?task={task_id}&type=task.step&limit=100", headers=V).json()["data"]
    assert len(steps) == STEPS, len(steps)
    return (_span_ms(task) - llm_ms) / STEPS


def _invocation_overhead(client, invocation_id: str) -> float:
    waited = client.post(f"/v1/invocations/{invocation_id}/wait", json={"timeoutMs": 60_000}).json()["invocation"]
    assert waited["status"] == "succeeded" and waited["stepCount"] == STEPS, waited
    events = client.get(
        f"/v1/runs/{waited['runId']}/events",
        params={"category": "invocation", "type": "invocation.llm_call", "limit": 200},
    ).json()
    llm_ms = sum(
        e["data"]["latencyMs"]
        for e in events["data"]
        if e["type"] == "invocation.llm_call" and e["data"]["invocationId"] == invocation_id
    )
    return (_span_ms(waited) - llm_ms) / STEPS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    llm = StandInLlm()
    try:
        with server() as (_, client, _data_dir):
            client.post(
                "/v1/ai-connections",
                json={
                    "label": "stand-in",
                    "provider": "openai-compatible",
                    "baseUrl": f"{llm.base}/v1",
                    "apiKey": "sk-test",
                    "defaultModel": "standin-model",
                },
            ).raise_for_status()
            client.post(
                "/v1/agents",
                json={"name": "bench", "model": "standin-model", "tools": ["browser.pages.list"]},
                headers=V,
            ).raise_for_status()
            runtime = client.post("/v1/runtimes", json={"start": True, "recording": False}).json()
            path = f"/v1/runtimes/{runtime['id']}/invocations"
            tasks, invocations = [], []
            for i in range(args.rounds + 1):
                llm.then(*[{"tool": "browser_pages_list", "args": {}}] * 4, {"tool": "done", "args": {"result": "ok"}})
                made = client.post(
                    "/v1/tasks",
                    json={"agent": "bench", "input": "list the pages", "metadata": {"browserId": runtime["id"]}},
                    headers=V,
                )
                assert made.status_code == 202, made.text
                overhead = _task_overhead(client, made.json()["id"])
                llm.then(
                    *[{"tool": "scroll", "args": {"direction": "down"}}] * 4,
                    {"tool": "done", "args": {"success": True, "result": "ok"}},
                )
                inv = client.post(path, json={"action": "stagehandAgent", "instruction": "scroll", "maxSteps": STEPS})
                assert inv.status_code == 202, inv.text
                baseline = _invocation_overhead(client, inv.json()["id"])
                if i:  # the first round starts the worker's Playwright driver
                    tasks.append(overhead)
                    invocations.append(baseline)
            client.post(f"/v1/runtimes/{runtime['id']}/stop")
    finally:
        llm.close()
    task_ms, inv_ms = statistics.median(tasks), statistics.median(invocations)
    print(f"tasks ({machine()}; stand-in LLM answering at once; {STEPS}-step runs, {args.rounds} rounds)")
    print(f"  flat invocation agent, overhead per step : median {inv_ms:6.1f} ms  max {max(invocations):6.1f} ms")
    print(
        f"  /v1/tasks agent, overhead per step       : median {task_ms:6.1f} ms  max {max(tasks):6.1f} ms"
        f"   ratio to the invocation {task_ms / inv_ms:.2f}"
    )
    print(f"  target < 50 ms per task step: {task_ms:.0f} ms ({'met' if task_ms < 50 else 'missed'})")


if __name__ == "__main__":
    main()

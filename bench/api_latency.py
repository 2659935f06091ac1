"""API latency under load, both backends: `GET /v1/spaces` and `POST /v1/spaces` with 1 and 20
concurrent clients (p50, p99), next to `GET /healthz` (no database) at the same concurrency,
measured in the same run, so the ratio shows what the database path adds.

Targets (issue 12): at 20 clients, read p99 under 50 ms on PostgreSQL and under 100 ms on SQLite.
Run: `.venv/bin/python -m bench.api_latency [--requests N]` (N per client, default 50).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import httpx

from bench.harness import machine, percentile, server
from tests.conftest import REDIS_URL
from tests.e2e.conftest import create_db, drop_db


async def _load(url: str, clients: int, per_client: int, method: str, path: str) -> tuple[list[float], float]:
    """Per-request latencies (ms) and the throughput (requests per second) of the whole phase."""
    timings: list[float] = []

    async def one(client: httpx.AsyncClient) -> None:
        for _ in range(per_client):
            body = {"name": f"bench-{uuid.uuid4().hex[:8]}"} if method == "POST" else None
            started = time.perf_counter()
            response = await client.request(method, path, json=body)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code < 300, response.text

    # A client (and connection) per simulated user: one shared httpx pool serialises its users and
    # would measure itself (its p99 at 20 users was five times the server's).
    users = [
        httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer bench-key"}, timeout=60)
        for _ in range(clients)
    ]
    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(user) for user in users))
    finally:
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(user.aclose() for user in users))
    return timings, len(timings) / elapsed


def _row(name: str, measured: tuple[list[float], float], baseline: tuple[list[float], float], clients: int) -> str:
    (values, rate), base = measured, baseline[0]
    p50, p99 = percentile(values, 50), percentile(values, 99)
    # Closed loop: each client sends its next request when the last one returns, so the mean latency
    # is at least clients / throughput; shown so a p99 can be read against what the machine allows.
    return (
        f"  {name:<22} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  {rate:5.0f} req/s  "
        f"(p99 x{p99 / max(percentile(base, 99), 0.001):.1f} the /healthz p99; "
        f"closed-loop floor {clients / rate * 1000:5.1f} ms)"
    )


def measure(label: str, per_client: int, **extra: str) -> None:
    with server(**extra) as (url, client, _data):
        for _ in range(50):  # a full page (50), so every read phase lists the same amount
            client.post("/v1/spaces", json={"name": f"seed-{uuid.uuid4().hex[:6]}"})
        asyncio.run(_load(url, 4, 10, "GET", "/v1/spaces"))  # warm the pools
        print(f"{label}:")
        for clients in (1, 20):
            base = asyncio.run(_load(url, clients, per_client, "GET", "/healthz"))
            reads = asyncio.run(_load(url, clients, per_client, "GET", "/v1/spaces"))
            writes = asyncio.run(_load(url, clients, per_client, "POST", "/v1/spaces"))
            print(f" {clients} client(s) x {per_client} requests:")
            print(_row("GET /healthz", base, base, clients))
            print(_row("GET /v1/spaces", reads, base, clients))
            print(_row("POST /v1/spaces", writes, base, clients))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50, help="requests per client and figure")
    args = parser.parse_args(argv)
    print(f"API latency ({machine()}; the load generator shares the machine)")
    measure("SQLite (embedded defaults)", args.requests)
    database = create_db()
    try:
        measure("PostgreSQL + Redis", args.requests, BCTRL_DATABASE_URL=database, BCTRL_REDIS_URL=REDIS_URL)
    finally:
        drop_db(database)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

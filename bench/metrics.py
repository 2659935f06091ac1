"""What the HTTP metrics cost: requests per second of the same app with and without MetricsMiddleware
(route template, status counter, duration histogram), in process over ASGI so that the network and the
client's sockets do not hide it. `GET /healthz` (nothing else on its path: the worst case for a
relative cost) and `GET /v1/spaces` (authentication and a database read: a typical API call), plus
the scrape itself (`GET /metrics`) once every route has a series.

Rounds alternate with / without (short ones, many) so that a machine busy with something else slows
both alike; the ratio is the median of the rounds' ratios, with their spread: on a shared machine the
spread is wider than the cost, so the last line measures the middleware alone (around an ASGI app that
answers at once), the figure to compare with a request's time. Target: under 1% of a `/healthz` request.
Run: `.venv/bin/python -m bench.metrics [--requests N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.accounts.service import create_account, create_key
from app.core.logging import configure
from app.core.metrics_middleware import MetricsMiddleware
from bench.harness import machine
from tests.conftest import make_settings, running_app


def _without_metrics(app) -> None:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not MetricsMiddleware]
    app.middleware_stack = None  # rebuilt on the next request, without it


async def _rate(client: httpx.AsyncClient, path: str, requests: int, concurrency: int = 4) -> float:
    async def one(count: int) -> None:
        for _ in range(count):
            answer = await client.get(path)
            assert answer.status_code == 200, answer.text

    started = time.perf_counter()
    await asyncio.gather(*(one(requests // concurrency) for _ in range(concurrency)))
    return (requests // concurrency * concurrency) / (time.perf_counter() - started)


async def run(requests: int, rounds: int) -> None:
    configure("warning", False)  # an access line a request would cost more than what is measured
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        async with (
            running_app(make_settings(Path(a), "sqlite", None, log_level="warning")) as with_srv,
            running_app(make_settings(Path(b), "sqlite", None, log_level="warning")) as without_srv,
        ):
            _without_metrics(without_srv.app)
            clients = {}
            for name, srv in (("with", with_srv), ("without", without_srv)):
                account = await create_account(srv.ctx.db, "bench")
                key = await create_key(srv.ctx.db, account.id, "bench")
                clients[name] = srv.anonymous(headers={"Authorization": f"Bearer {key.secret}"})
            print(f"MetricsMiddleware overhead ({machine()}; in process, {requests} requests x {rounds} rounds)")
            for path in ("/healthz", "/v1/spaces"):
                for client in clients.values():
                    await _rate(client, path, 200)  # warm: caches, the first series of each label set
                ratios, rates = [], {"with": [], "without": []}
                for _ in range(rounds):
                    for name in ("with", "without"):
                        rates[name].append(await _rate(clients[name], path, requests))
                    ratios.append(rates["with"][-1] / rates["without"][-1])
                print(
                    f"  GET {path:<11} with {statistics.median(rates['with']):7.0f} req/s  "
                    f"without {statistics.median(rates['without']):7.0f} req/s  "
                    f"ratio {statistics.median(ratios):.3f} (rounds {min(ratios):.3f} to {max(ratios):.3f})"
                )
            # The scrape, with the series of every route this process has answered.
            scrape_ms = []
            for _ in range(20):
                started = time.perf_counter()
                answer = await clients["with"].get("/metrics")
                scrape_ms.append((time.perf_counter() - started) * 1000)
            lines = answer.text.count("\n")
            print(f"  GET /metrics       median {statistics.median(scrape_ms):.1f} ms for {lines} lines")
            for client in clients.values():
                await client.aclose()
    print(f"  the middleware alone: {await _alone(20_000):.1f} us a request (around an app that answers at once)")


async def _alone(calls: int) -> float:
    """Microseconds the middleware adds to one request, around an ASGI app that answers at once."""

    class Route:
        path_format = "/v1/spaces/{space_id}"

    async def answer(scope, receive, send) -> None:
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message) -> None:
        pass

    async def timed(app) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await app({"type": "http", "method": "GET", "path": "/v1/spaces/x"}, receive, send)
        return time.perf_counter() - started

    wrapped = MetricsMiddleware(answer)
    bare, counted = [], []
    for _ in range(5):
        bare.append(await timed(answer))
        counted.append(await timed(wrapped))
    return (statistics.median(counted) - statistics.median(bare)) / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)
    asyncio.run(run(args.requests, args.rounds))


if __name__ == "__main__":
    main()

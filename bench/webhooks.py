"""Webhook delivery: rate and added latency per event, and what the outbox costs the event writer.

A real `bctrl-server serve` on PostgreSQL + Redis delivers to receivers on 127.0.0.1 (answering 204).
This process writes the events into the server's database through the server's EventWriter (with a
RunNotifier on the same Redis namespace, so the server wakes as it would for its own events).

1. Latency: 20 events/s for `--seconds`, one webhook: from `emit` to the receiver's arrival (p50, p99),
   next to the baseline of the same events' commit (the writer's own batching delay).
2. Rate: a burst of `--burst` events to one webhook (deliveries of one webhook go one at a time, in
   order), then to 8 webhooks of the account (in parallel across webhooks): deliveries per second.
3. Writer cost: the EventWriter's sustained rate with the outbox row (this tree) against the same
   writer without it (the tree before the outbox, `--before <dir>`, e.g. a `git archive` of it),
   alternated twice each; the ratio is what the outbox costs ingestion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select

from app.core.db import Database
from app.runs.notifier import RunNotifier
from app.runs.writer import EventWriter
from app.webhooks.models import Webhook
from bench.events import _drop_db, _fresh_db, make_run
from bench.harness import machine, median, percentile
from tests.support import env_with, free_port

REDIS = "redis://127.0.0.1:6379/0"
BIN = Path(sys.executable).parent


class Sink:
    """A receiver that answers 204 and notes when each event arrived (by its `data.data.t0`)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, float]] = []  # (emitted at, arrived at), perf_counter clock
        self.count = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = orjson.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                now = time.perf_counter()
                with sink._lock:
                    sink.count += 1
                    t0 = body.get("data", {}).get("data", {}).get("t0")
                    if t0 is not None:
                        sink.arrivals.append((t0, now))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def start_server(tmp: Path, url: str, prefix: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = env_with(
        BCTRL_DATA_DIR=str(tmp),
        BCTRL_DATABASE_URL=url,
        BCTRL_REDIS_URL=REDIS,
        BCTRL_REDIS_PREFIX=prefix,
        BCTRL_API_KEY="bench-key",
        BCTRL_PORT=str(port),
        BCTRL_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "warning"),
        BCTRL_WEBHOOK_EGRESS="private",
    )
    proc = subprocess.Popen(
        [str(BIN / "bctrl-server"), "serve"], env=env, stdout=open(tmp / "server.log", "wb"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((tmp / "server.log").read_text())
        time.sleep(0.2)


async def wait_count(sink: Sink, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while sink.count < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sink.count}/{n} deliveries arrived")
        await asyncio.sleep(0.01)


async def delivery(seconds: float, burst: int) -> dict:
    url = await _fresh_db()
    prefix = f"bctrl-bench-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="bctrl-bench-wh-"))
    proc, base = start_server(tmp, url, prefix)
    db = Database(url)
    notifier = RunNotifier(REDIS, prefix)
    await notifier.start()
    db.on_events_committed = notifier.publish
    writer = EventWriter(db)
    await writer.start()
    sinks: list[Sink] = []
    api = httpx.AsyncClient(
        base_url=base, headers={"Authorization": "Bearer bench-key", "BCTRL-Version": "2026-10-03"}, timeout=60
    )
    try:

        async def hook(events: list[str]) -> Sink:
            sinks.append(Sink())
            made = await api.post("/v1/webhooks", json={"url": sinks[-1].url, "events": events})
            assert made.status_code == 201, made.text
            return sinks[-1]

        one = await hook(["bench.tick"])
        async with db.read() as s:
            account_id = (await s.execute(select(Webhook.account_id))).scalar_one()
        run_id = await make_run(db, account_id)

        # 1. latency at a modest rate
        emitted = 0
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            writer.emit(run_id, "bench.tick", "lifecycle", {"t0": time.perf_counter()}, source="system")
            emitted += 1
            await asyncio.sleep(0.05)
        await wait_count(one, emitted)
        latencies = [(b - a) * 1000 for a, b in one.arrivals]

        # 2. rate: a burst to one webhook (made first: a webhook gets only events after its creation),
        # then to eight
        solo = await hook(["bench.burst"])
        solo_start = time.perf_counter()
        for _ in range(burst):
            writer.emit(run_id, "bench.burst", "lifecycle", {}, source="system")
        await wait_count(solo, burst)
        one_rate = burst / (time.perf_counter() - solo_start)
        many = [await hook(["bench.fan"]) for _ in range(8)]
        fan_start = time.perf_counter()
        for _ in range(burst // 8):
            writer.emit(run_id, "bench.fan", "lifecycle", {}, source="system")
        for sink in many:
            await wait_count(sink, burst // 8)
        fan_rate = 8 * (burst // 8) / (time.perf_counter() - fan_start)
        return {"latencies": latencies, "one": one_rate, "eight": fan_rate, "burst": burst}
    finally:
        await api.aclose()
        await writer.stop()
        await notifier.close()
        await db.dispose()
        proc.terminate()
        proc.wait(timeout=60)
        for sink in sinks:
            sink.close()
        await _drop_db(url)


def writer_rate(tree: Path, seconds: float) -> float:
    """bench.events.synthetic's EventWriter rate, run from `tree` (its app, its migrations)."""
    code = f"import asyncio; from bench.events import synthetic; b, r = asyncio.run(synthetic({seconds})); print(r)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--before", type=Path, help="a tree of this repository before the outbox (writer cost)")
    parser.add_argument("--writer-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    r = asyncio.run(delivery(args.seconds, args.burst))
    lat = r["latencies"]
    print(f"webhooks ({machine()}; PostgreSQL + Redis, receivers on loopback answering 204)")
    print(
        f"  emit -> receiver, 20 events/s   : p50 {median(lat):6.1f} ms, p99 {percentile(lat, 99):6.1f} ms"
        f" ({len(lat)} events)"
    )
    print(f"  burst of {r['burst']} to one webhook    : {r['one']:8.0f} deliveries/s (in order, one at a time)")
    print(f"  burst to eight webhooks          : {r['eight']:8.0f} deliveries/s")
    if args.before:
        here = Path(__file__).resolve().parents[1]
        with_outbox, without = [], []
        for _ in range(2):
            without.append(writer_rate(args.before, args.writer_seconds))
            with_outbox.append(writer_rate(here, args.writer_seconds))
        print(
            f"  EventWriter with the outbox      : {median(with_outbox):8.0f} events/s vs {median(without):.0f} without"
            f" (ratio {median(with_outbox) / median(without):.2f})"
        )


if __name__ == "__main__":
    main()

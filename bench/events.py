"""Event ingestion and delivery.

1. Synthetic producer: the server's EventWriter against PostgreSQL, fed as fast as it drains for
   N seconds, next to a baseline of plain multi-row inserts of the same rows (no sequence
   allocation, no queue) measured in the same run.
2. Browser producer: a page that logs and fetches in a loop, driven through the proxy of a real
   server process on PostgreSQL + Redis; events per second that reach the database.
3. SSE delivery latency: the page's console.log carries Date.now(); an SSE client of the run
   measures when each `console.message` event arrives (p50, p99).
4. Delivery while 20,000 events/s are written (`--current`): a producer in this process writes
   network events at a fixed rate through the server's EventWriter into a run of a real server
   process (PostgreSQL + Redis), with a `console.message` tick every 100th event. Each tick's commit
   time is taken when the writer's transaction has committed (before the wake-up is published); a
   subscriber process per phase reads one stream and notes when each tick arrives. Phases, one
   stream at a time: the flat `/v1/runs/{id}/events/stream?type=console.message` (the baseline),
   the current `/v1/events/stream?run=&type=console.message`, and the current
   `/v1/runs/{id}/stream` (typed frames of every event: it has no filter, so it carries all 20,000/s).
Targets (issue 5): >= 20,000 events/s ingested, p99 delivery < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy import insert, text

from app.core import clock, ids
from app.core.db import Database
from app.core.migrate import upgrade
from app.runs.models import Run, RunEvent
from app.runs.writer import EventWriter
from bench.harness import machine, median, pages, percentile
from tests.support import env_with, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"


async def _fresh_db() -> str:
    name = f"bctrl_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await upgrade(url)
    return url


async def _drop_db(url: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def make_run(db: Database, account_id: uuid.UUID | None = None) -> uuid.UUID:
    """An active run (of a new account unless one is given) to write events into: no browser, the
    benches measure what happens to events, not launches."""
    from app.accounts.service import create_account
    from app.spaces.models import Space

    if account_id is None:
        account_id = (await create_account(db, "bench")).id
    now = clock.now()
    space = Space(
        id=ids.new_id(),
        account_id=account_id,
        name="bench",
        region="local",
        metadata_=None,
        mounts={},
        is_default=False,
        created_at=now,
        updated_at=now,
    )
    run = Run(
        id=ids.new_id(),
        account_id=account_id,
        space_id=space.id,
        runtime_id=ids.new_id(),
        runtime_type="browser",
        status="active",
        recording=False,
        failure=None,
        event_seq=0,
        created_at=now,
        started_at=now,
    )
    async with db.transaction() as s:
        s.add(space)
        await s.flush()
        s.add(run)
    return run.id


def _payload(i: int) -> dict:
    return {
        "requestId": f"{i}",
        "url": f"http://127.0.0.1/resource/{i}",
        "method": "GET",
        "status": 200,
        "mimeType": "text/html",
        "encodedBytes": 512,
        "durationMs": 1.5,
    }


async def synthetic(seconds: float) -> tuple[float, float, float]:
    url = await _fresh_db()
    db = Database(url)
    try:
        run_id = await make_run(db)
        # Baseline: the same rows, inserted 2,000 at a time, with nothing else.
        rows_written, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            batch = [
                {
                    "id": ids.new_id(),
                    "run_id": run_id,
                    "seq": rows_written + k + 1,
                    "time": clock.now(),
                    "type": "network.response",
                    "category": "network",
                    "source": "browser",
                    "page_id": "p",
                    "connection_id": None,
                    "data": _payload(k),
                }
                for k in range(2000)
            ]
            async with db.transaction() as s:
                await s.execute(insert(RunEvent), batch)
            rows_written += len(batch)
        baseline = rows_written / (time.perf_counter() - t0)
        async with db.transaction() as s:
            await s.execute(text("TRUNCATE run_events"))

        rate = await _through_writer(db, seconds, None)
        # As the run observer writes: each event with its owner, fenced per batch (app/runs/writer.py).
        fenced = await _through_writer(db, seconds, "bench-owner")
        return baseline, rate, fenced
    finally:
        await db.dispose()
        await _drop_db(url)


async def _through_writer(db: Database, seconds: float, owner: str | None) -> float:
    run_id = await make_run(db)
    writer = EventWriter(db)
    await writer.start()
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        if writer.pending > 20_000:  # measure sustained ingestion, not the drop policy
            await asyncio.sleep(0.005)
            continue
        for _ in range(500):
            writer.emit(
                run_id,
                "network.response" if i % 3 else "console.message",
                "network" if i % 3 else "console",
                _payload(i),
                owner=owner,
            )
            i += 1
        await asyncio.sleep(0)
    await writer.stop()
    return writer.written / (time.perf_counter() - t0)


def browser_traffic(seconds: float) -> tuple[float, list[float]]:
    url = asyncio.run(_fresh_db())
    with tempfile.TemporaryDirectory(prefix="bctrl-bench-") as tmp, pages() as page_url:
        port = free_port()
        env = env_with(
            BCTRL_DATA_DIR=tmp,
            BCTRL_DATABASE_URL=url,
            BCTRL_REDIS_URL=REDIS,
            BCTRL_REDIS_PREFIX=f"bench-{uuid.uuid4().hex[:6]}",
            BCTRL_API_KEY="bench-key",
            BCTRL_PORT=str(port),
            BCTRL_LOG_LEVEL="warning",
        )
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bctrl-server"), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base, headers={"Authorization": "Bearer bench-key"}, timeout=60) as client:
                started = client.post("/v1/runtimes", json={"start": True}).json()
                run_id = started["activeRunId"]
                latencies: list[float] = []
                stop = threading.Event()

                def listen() -> None:
                    with (
                        contextlib.suppress(httpx.HTTPError),
                        client.stream(
                            "GET", f"/v1/runs/{run_id}/events/stream", params={"type": "console.message"}, timeout=None
                        ) as response,
                    ):
                        for line in response.iter_lines():
                            if stop.is_set():
                                return
                            if line.startswith("data:") and '"tick' in line:
                                text = json.loads(line[5:])["data"]["text"]
                                latencies.append(time.time() * 1000 - float(text.split()[1]))

                listener = threading.Thread(target=listen, daemon=True)
                listener.start()
                time.sleep(0.5)
                count0 = client.get(f"/v1/runs/{run_id}").json()["counts"]["events"]
                with sync_playwright() as pw:
                    browser = pw.chromium.connect_over_cdp(started["connection"]["cdpUrl"])
                    page = browser.contexts[0].new_page()
                    page.goto(f"{page_url}/chatty.html")
                    t0 = time.perf_counter()
                    time.sleep(seconds)
                    count1 = client.get(f"/v1/runs/{run_id}").json()["counts"]["events"]
                    elapsed = time.perf_counter() - t0
                    page.evaluate("window.stop = true")
                    browser.close()
                stop.set()
                client.post(f"/v1/runtimes/{started['id']}/stop")
                return (count1 - count0) / elapsed, latencies
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            asyncio.run(_drop_db(url))


TICK = "bench.tick"
CURRENT_HEADERS = {"BCTRL-Version": "2026-10-03"}


_TICK_BYTES = re.compile(rb'"tick":(\d+)')


def _listen(base: str, path: str, params: dict, headers: dict, ready, stop, out) -> None:
    """A subscriber process: read one SSE stream, note (tick, arrival time) for each tick frame.

    It scans the bytes as they arrive (only tick events carry a `"tick"` key) instead of decoding and
    splitting every line in Python: at 20,000 frames/s that cost it a tenth of a core and delayed ticks
    whenever it was descheduled; now it is a few percent of a core."""
    arrivals: list[tuple[int, float]] = []
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer bench-key", **headers}, timeout=None) as client:
        with contextlib.suppress(httpx.HTTPError), client.stream("GET", path, params=params) as response:
            ready.set()
            pending = b""
            for chunk in response.iter_bytes():
                now = time.time()
                pending += chunk
                cut = pending.rfind(b"\n")
                if cut >= 0:
                    complete, pending = pending[:cut], pending[cut + 1 :]
                    arrivals.extend((int(found.group(1)), now) for found in _TICK_BYTES.finditer(complete))
                if stop.is_set():
                    break
    out.put(arrivals)


class _TimedWriter(EventWriter):
    """The server's writer, noting when each tick's transaction committed (the notifier hook runs right
    after the commit, before the wake-up is published)."""

    def __init__(self, db: Database, notifier) -> None:
        super().__init__(db)
        self.committed_at = 0.0
        self.commits: dict[int, float] = {}
        self.notifier = notifier

        async def committed(runs: set) -> None:
            self.committed_at = time.time()
            await notifier.publish(runs)

        db.on_events_committed = committed

    async def _insert(self, batch: list[dict]) -> int:
        ticks = [row["data"]["tick"] for row in batch if row["type"] == TICK]
        written = await super()._insert(batch)
        for tick in ticks:
            self.commits[tick] = self.committed_at
        return written


async def _produce(url: str, prefix: str, run_id: uuid.UUID, rate: int, seconds: float, first_tick: int) -> dict:
    from app.runs.notifier import RunNotifier

    db = Database(url)
    notifier = RunNotifier(REDIS, prefix)
    writer = _TimedWriter(db, notifier)
    await writer.start()
    try:
        t0 = time.perf_counter()
        sent, tick = 0, first_tick
        while (elapsed := time.perf_counter() - t0) < seconds:
            due = int(elapsed * rate) - sent
            for _ in range(max(0, due)):
                if sent % 100 == 0:
                    writer.emit(run_id, TICK, "console", {"tick": tick, "at": time.time()}, source="browser")
                    tick += 1
                else:
                    writer.emit(run_id, "network.response", "network", _payload(sent), source="browser")
                sent += 1
            await asyncio.sleep(0.005)
        emitting = time.perf_counter() - t0
        await writer.stop()
        return {
            "sent": sent,
            "emitting": emitting,
            "elapsed": time.perf_counter() - t0,  # with the writer's drain at the end
            "written": writer.written,
            "commits": writer.commits,
        }
    finally:
        await notifier.close()
        await db.dispose()


def current_delivery(seconds: float, rate: int, only: str | None = None) -> dict[str, dict]:
    """p50/p99 from commit to subscriber for each stream, while `rate` events/s are written."""
    import multiprocessing

    url = asyncio.run(_fresh_db())
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bctrl-bench-") as tmp:
        port = free_port()
        env = env_with(
            BCTRL_DATA_DIR=tmp,
            BCTRL_DATABASE_URL=url,
            BCTRL_REDIS_URL=REDIS,
            BCTRL_REDIS_PREFIX=prefix,
            BCTRL_API_KEY="bench-key",
            BCTRL_PORT=str(port),
            BCTRL_LOG_LEVEL="warning",
        )
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bctrl-server"), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            me = httpx.get(f"{base}/v1/auth/whoami", headers={"Authorization": "Bearer bench-key"}).json()
            account, space = uuid.UUID(me["organizationId"]), uuid.UUID(me["defaultSpaceId"])
            phases = {
                "flat /v1/runs/{id}/events/stream": ("/v1/runs/{run}/events/stream", {"type": TICK}, {}),
                "current /v1/events/stream": ("/v1/events/stream", {"run": "{run}", "type": TICK}, CURRENT_HEADERS),
                "current /v1/runs/{id}/stream": ("/v1/runs/{run}/stream", {}, CURRENT_HEADERS),
            }
            spawn = multiprocessing.get_context("spawn")
            first_tick = 0
            for name, (path, params, headers) in phases.items():
                if only and only not in name:
                    continue
                # A run of its own per phase (the run stream starts from the run's first event).
                run_id = asyncio.run(_run_of(url, account, space))
                path = path.format(run=run_id)
                params = {k: v.format(run=run_id) for k, v in params.items()}
                ready, stop, out = spawn.Event(), spawn.Event(), spawn.Queue()
                listener = spawn.Process(target=_listen, args=(base, path, params, headers, ready, stop, out))
                listener.start()
                ready.wait(30)
                time.sleep(1.0)
                cpu0 = (_cpu_seconds(proc.pid), _cpu_seconds(listener.pid), time.process_time(), _busy(), _postgres())
                produced = asyncio.run(_produce(url, prefix, run_id, rate, seconds, first_tick))
                cpu1 = (_cpu_seconds(proc.pid), _cpu_seconds(listener.pid), time.process_time(), _busy(), _postgres())
                time.sleep(2.0)  # the last ticks arrive
                stop.set()
                # A quiet stream blocks in its read until its next heartbeat: one more tick wakes it.
                asyncio.run(_produce(url, prefix, run_id, 100, 0.2, 10**9))
                arrivals = out.get(timeout=60)
                listener.join(timeout=30)
                if listener.is_alive():
                    listener.terminate()
                commits = produced["commits"]
                latencies = [(at - commits[t]) * 1000 for t, at in arrivals if t in commits]
                results[name] = {
                    "offered": produced["sent"] / produced["emitting"],
                    "cpu": {
                        "server": (cpu1[0] - cpu0[0]) / produced["elapsed"],
                        "subscriber": (cpu1[1] - cpu0[1]) / produced["elapsed"],
                        "producer": (cpu1[2] - cpu0[2]) / produced["elapsed"],
                        "postgres (every database)": (cpu1[4] - cpu0[4]) / produced["elapsed"],
                    },
                    "busy": (cpu1[3][0] - cpu0[3][0]) / max(1e-9, cpu1[3][1] - cpu0[3][1]),
                    "rate": produced["written"] / produced["elapsed"],
                    "ticks": len(commits),
                    "received": len(latencies),
                    "latencies": latencies,
                }
                first_tick += len(commits) + 1
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            asyncio.run(_drop_db(url))
    return results


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres() -> float:
    """CPU seconds so far of PostgreSQL on this machine (whoever's queries it ran): every live postgres
    process, plus what the postmaster's exited backends used (a phase's producer connections end before
    the phase is measured)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            head, fields = stat.read_text().rsplit(")", 1)
            if head.split(" (", 1)[1] != "postgres":
                continue
            fields = fields.split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            if Path(f"/proc/{fields[1]}/comm").read_text().strip() != "postgres":  # the postmaster
                total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def _busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine so far, every core (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def _run_of(url: str, account_id: uuid.UUID, space_id: uuid.UUID) -> uuid.UUID:
    """An active run of the server's account, with no browser behind it (the producer writes its events)."""
    db = Database(url)
    now = clock.now()
    run = Run(
        id=ids.new_id(),
        account_id=account_id,
        space_id=space_id,
        runtime_id=ids.new_id(),
        runtime_type="browser",
        status="active",
        recording=False,
        failure=None,
        event_seq=0,
        created_at=now,
        started_at=now,
    )
    async with db.transaction() as s:
        s.add(run)
    await db.dispose()
    return run.id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--current", action="store_true", help="only phase 4: delivery on the flat and current streams under load"
    )
    parser.add_argument("--rate", type=int, default=20_000, help="events/s written in phase 4")
    parser.add_argument("--only", help="phase 4: only the streams whose name contains this (e.g. 'runs/{id}/stream')")
    args = parser.parse_args(argv)
    if args.current:
        print(f"stream delivery while {args.rate:,} events/s are written ({machine()}; {args.seconds:g} s a phase)")
        for name, r in current_delivery(args.seconds, args.rate, args.only).items():
            lat = r["latencies"]
            summary = f"p50 {median(lat):6.1f} ms, p99 {percentile(lat, 99):6.1f} ms" if lat else "nothing arrived"
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"].items())
            print(
                f"  {name:34s}: {summary}, max {max(lat, default=0):6.1f} ms"
                f" ({r['received']}/{r['ticks']} ticks; {r['offered']:,.0f} events/s offered,"
                f" {r['rate']:,.0f} written incl. the drain)\n      cores used: {cpu}; machine busy {r['busy']:.0%} of all cores"
            )
        print("target: p99 from commit to subscriber < 100 ms")
        return
    baseline, rate, fenced = asyncio.run(synthetic(args.seconds))
    browser_rate, latencies = browser_traffic(args.seconds)
    print(f"events ({machine()}; {args.seconds:g} s per producer, PostgreSQL)")
    print(f"  baseline plain inserts          : {baseline:10.0f} events/s")
    print(f"  EventWriter, synthetic producer : {rate:10.0f} events/s   (ratio {rate / baseline:.2f})")
    print(f"  same, fenced by run owner       : {fenced:10.0f} events/s   (ratio {fenced / baseline:.2f})")
    print(f"  browser page through the proxy  : {browser_rate:10.0f} events/s reached the database")
    if latencies:
        print(
            f"  SSE delivery of console events  : p50 {median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms"
            f" ({len(latencies)} events)"
        )
    print("targets: >= 20,000 events/s ingested; SSE p99 < 100 ms")


if __name__ == "__main__":
    main()

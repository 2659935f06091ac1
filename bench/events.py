"""Event ingestion and delivery.

1. Synthetic producer: the server's EventWriter against PostgreSQL, fed as fast as it drains for
   N seconds, next to a baseline of plain multi-row inserts of the same rows (no sequence
   allocation, no queue) measured in the same run.
2. Browser producer: a page that logs and fetches in a loop, driven through the proxy of a real
   server process on PostgreSQL + Redis; events per second that reach the database.
3. SSE delivery latency: the page's console.log carries Date.now(); an SSE client of the run
   measures when each `console.message` event arrives (p50, p99).
Targets (issue 5): >= 20,000 events/s ingested, p99 delivery < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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


async def _make_run(db: Database) -> uuid.UUID:
    from app.accounts.service import create_account
    from app.spaces.models import Space

    account = await create_account(db, "bench")
    now = clock.now()
    space = Space(
        id=ids.new_id(),
        account_id=account.id,
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
        account_id=account.id,
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


async def synthetic(seconds: float) -> tuple[float, float]:
    url = await _fresh_db()
    db = Database(url)
    try:
        run_id = await _make_run(db)
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

        run_id = await _make_run(db)
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
                )
                i += 1
            await asyncio.sleep(0)
        await writer.stop()
        rate = writer.written / (time.perf_counter() - t0)
        return baseline, rate
    finally:
        await db.dispose()
        await _drop_db(url)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    baseline, rate = asyncio.run(synthetic(args.seconds))
    browser_rate, latencies = browser_traffic(args.seconds)
    print(f"events ({machine()}; {args.seconds:g} s per producer, PostgreSQL)")
    print(f"  baseline plain inserts          : {baseline:10.0f} events/s")
    print(f"  EventWriter, synthetic producer : {rate:10.0f} events/s   (ratio {rate / baseline:.2f})")
    print(f"  browser page through the proxy  : {browser_rate:10.0f} events/s reached the database")
    if latencies:
        print(
            f"  SSE delivery of console events  : p50 {median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms"
            f" ({len(latencies)} events)"
        )
    print("targets: >= 20,000 events/s ingested; SSE p99 < 100 ms")


if __name__ == "__main__":
    main()

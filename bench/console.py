"""The console's time to interactive, in headless Chromium on this machine.

A real server process on PostgreSQL and Redis; its account gets 1,000 ended runs (each with twenty
events, a recording row and one frame on disk, as a recorded run has) and one run with 10,000 events,
written straight into the database (no browsers: this measures the console and the API it reads, not
launches). Each page is opened in a fresh headless Chromium tab signed in with the key, five times:

- navigation timing: DOMContentLoaded and the load event of the console's shell;
- ready: the page's own `console-ready` mark, set when the first page of data is drawn (the runs page:
  the first 50 runs; the run page: the first 200 events on the timeline and in its list);
- the run page also: when all 10,000 events are loaded (the timeline pages them in behind), the longest
  main-thread task meanwhile (Long Tasks API), and the rows in the DOM (virtual list: a few dozen).

Baseline, measured in the same run: the same first page of data fetched by a plain HTTP client (the
API's own share of the time); the ratio says what the page adds on top.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy import insert, text

from app.core import clock, datadir, ids
from app.core.db import Database
from app.core.migrate import upgrade
from app.live.models import Recording
from app.runs.models import Run, RunEvent
from bench.harness import machine, serving
from tests.support import env_with, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
CURRENT = {"BCTRL-Version": "2026-10-03"}
KEY_STORE = "bctrl.console.key"


def _jpeg(path: Path) -> None:
    """One 1280x720 frame, as the recorder writes them (ffmpeg draws it; a grey block without it)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        subprocess.run(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=1280x720",
                "-frames:v",
                "1",
                str(path),
            ],
            check=True,
        )
    else:  # the smallest valid JPEG
        path.write_bytes(
            bytes.fromhex("ffd8ffdb004300" + "01" * 64 + "ffc0000b080001000101011100ffda0008010100003f00d2cf20ffd9")
        )


async def _seed(url: str, data_dir: Path, account_id: uuid.UUID, space_id: uuid.UUID, runs: int, many: int) -> str:
    """`runs` ended runs of twenty events each, with a frame on disk, and one run of `many` events; returns
    the big run's id."""
    db = Database(url)
    frame = data_dir / "bench-frame.jpg"
    _jpeg(frame)
    now = clock.now()
    run_rows, event_rows, recording_rows = [], [], []
    for i in range(runs + 1):
        big = i == runs
        started = now - timedelta(minutes=(runs - i) * 3 + 5)
        run_id = ids.new_id()
        count = many if big else 20
        run_rows.append(
            dict(
                id=run_id,
                account_id=account_id,
                space_id=space_id,
                runtime_id=ids.new_id(),
                runtime_type="browser",
                status="completed",
                recording=not big,
                failure=None,
                end_reason="stop requested",
                event_seq=count,
                command_seq=0,
                created_at=started,
                started_at=started,
                finished_at=started + timedelta(seconds=60 if not big else 600),
            )
        )
        for seq in range(1, count + 1):
            at = started + timedelta(milliseconds=seq * (50 if big else 2000))
            kind = seq % 5
            if kind == 0:
                type_, category, data = "page.navigated", "browser", {"url": f"https://example.test/{seq}"}
            elif kind == 1:
                type_, category, data = (
                    "network.request",
                    "network",
                    {"requestId": str(seq), "url": f"https://example.test/r/{seq}", "method": "GET"},
                )
            elif kind == 2:
                type_, category, data = (
                    "network.response",
                    "network",
                    {
                        "requestId": str(seq - 1),
                        "url": f"https://example.test/r/{seq - 1}",
                        "method": "GET",
                        "status": 200,
                        "durationMs": 40.0,
                    },
                )
            elif kind == 3:
                type_, category, data = (
                    "console.message",
                    "console",
                    {"level": "error" if seq % 15 == 3 else "log", "text": f"line {seq}"},
                )
            else:
                type_, category, data = (
                    "connection.command",
                    "connection",
                    {"total": 7, "methods": [{"method": "Runtime.evaluate", "count": 7}]},
                )
            event_rows.append(
                dict(
                    id=ids.new_id(),
                    run_id=run_id,
                    seq=seq,
                    time=at,
                    type=type_,
                    category=category,
                    source="browser",
                    page_id="P1",
                    data=data,
                )
            )
        if not big:
            frames = datadir.recording_frames(data_dir, run_id)
            frames.mkdir(parents=True, exist_ok=True)
            os.link(frame, frames / "000001.jpg")
            (frames / "index.jsonl").write_bytes(b'{"seq": 1, "t": 1000}\n')
            recording_rows.append(
                dict(
                    run_id=run_id,
                    status="preparing",
                    frames=1,
                    bytes=frame.stat().st_size,
                    last_frame_ms=1000,
                    created_at=started,
                    updated_at=started,
                )
            )
    async with db.transaction() as s:
        await s.execute(insert(Run), run_rows)
        for start in range(0, len(event_rows), 5000):
            await s.execute(insert(RunEvent), event_rows[start : start + 5000])
        await s.execute(insert(Recording), recording_rows)
    async with db.transaction() as s:
        await s.execute(text("ANALYZE run_events"))
        await s.execute(text("ANALYZE runs"))
    await db.dispose()
    return str(run_rows[-1]["id"])


def _open(browser, url: str, key: str, hash_: str, done_js: str | None = None, middle: int = 0) -> dict:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.add_init_script(
        f"sessionStorage.setItem({KEY_STORE!r}, {key!r});"
        "window.__longest = 0; try { new PerformanceObserver((l) => { for (const e of l.getEntries())"
        " window.__longest = Math.max(window.__longest, e.duration); }).observe({type: 'longtask', buffered: true}); } catch {}"
    )
    page = context.new_page()
    page.goto(f"{url}/{hash_}")
    page.wait_for_function("() => performance.getEntriesByName('console-ready').length > 0", timeout=60000)
    out = page.evaluate(
        """() => { const n = performance.getEntriesByType('navigation')[0];
                   return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                            ready: performance.getEntriesByName('console-ready')[0].startTime }; }"""
    )
    if done_js:
        page.wait_for_function(done_js, timeout=120000)
        out["all"] = page.evaluate("() => performance.now()")
        out["longest"] = page.evaluate("() => window.__longest")
        out["rows"] = page.locator(".run-row").count()
        # Scrolling to the middle of the list draws its rows at once.
        began = time.perf_counter()
        page.locator(".run-list").evaluate("(el) => { el.scrollTop = el.scrollHeight / 2; }")
        page.wait_for_function(
            "(middle) => document.querySelector('.run-row[data-index]')"
            " && [...document.querySelectorAll('.run-row')].some((r) => Number(r.dataset.index) > middle)",
            arg=middle,
        )
        out["scroll"] = (time.perf_counter() - began) * 1000
    else:
        out["rows"] = page.locator("tr[data-run-id]").count()
    context.close()
    return out


def _api_ms(client: httpx.Client, path: str, params: dict, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        assert client.get(path, params=params).status_code == 200
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"note: the machine is busy (load average {os.getloadavg()[0]:.1f}); figures will be slower than idle")

    name = f"bctrl_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> str:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        await upgrade(url)
        return url

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    db_url = asyncio.run(create())
    key = f"bench_{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="bctrl-bench-console-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = env_with(
            BCTRL_DATA_DIR=tmp,
            BCTRL_DATABASE_URL=db_url,
            BCTRL_REDIS_URL=REDIS,
            BCTRL_REDIS_PREFIX=f"bctrl-bench-{uuid.uuid4().hex[:8]}",
            BCTRL_API_KEY=key,
            BCTRL_PORT=str(port),
            BCTRL_HOST="127.0.0.1",
            BCTRL_LOG_LEVEL="warning",
        )
        with serving(env, data_dir) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}", **CURRENT}, timeout=60)
            space_id = uuid.UUID(client.get("/v1/auth/whoami").json()["defaultSpaceId"])

            async def account() -> uuid.UUID:
                conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
                found = await conn.fetchval("SELECT account_id FROM spaces WHERE id = $1", space_id)
                await conn.close()
                return found

            began = time.perf_counter()
            big = asyncio.run(_seed(db_url, data_dir, asyncio.run(account()), space_id, args.runs, args.events))
            seeded = time.perf_counter() - began

            api_runs = _api_ms(client, "/v1/runs", {"limit": 50, "order": "desc"})
            api_events = _api_ms(client, "/v1/events", {"run": big, "order": "asc", "limit": 200})
            began = time.perf_counter()
            pages, cursor = 0, None
            while True:
                page = client.get("/v1/runs", params={"limit": 50, **({"cursor": cursor} if cursor else {})}).json()
                pages += 1
                if not page["hasMore"]:
                    break
                cursor = page["nextCursor"]
            all_runs = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            cursor = None
            while True:
                query = {"run": big, "order": "asc", "limit": 200, **({"cursor": cursor} if cursor else {})}
                page = client.get("/v1/events", params=query).json()
                if not page["hasMore"]:
                    break
                cursor = page["nextCursor"]
            all_events = (time.perf_counter() - began) * 1000

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium") or None, args=["--no-sandbox"])
                _open(browser, url, key, "#/runs")  # warm: the modules in the browser's cache, as after a first visit
                runs = [_open(browser, url, key, "#/runs") for _ in range(args.repeat)]
                done = "() => /^[\\d,]+ events$/.test((document.querySelector('.run-load') || {}).textContent || '')"
                one = [
                    _open(browser, url, key, f"#/runs/{big}", done, args.events * 2 // 5) for _ in range(args.repeat)
                ]
                browser.close()
            client.close()
            asyncio.run(drop())

    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    print(f"console time to interactive ({machine()}; headless Chromium, PostgreSQL; median of {args.repeat})")
    print(f"  seeded {args.runs:,} runs and a run of {args.events:,} events in {seeded:.1f} s")
    print(
        f"  runs page, {args.runs:,} runs  : DOMContentLoaded {med(runs, 'dcl'):6.0f} ms, load {med(runs, 'load'):6.0f} ms,"
        f" ready (first 50 drawn) {med(runs, 'ready'):6.0f} ms ({runs[0]['rows']} rows)"
    )
    print(
        f"      baseline GET /v1/runs?limit=50: {api_runs:6.1f} ms (ready/baseline {med(runs, 'ready') / api_runs:.1f});"
        f" all {pages} pages through the API: {all_runs:6.0f} ms"
    )
    print(
        f"  run page, {args.events:,} events: DOMContentLoaded {med(one, 'dcl'):6.0f} ms, load {med(one, 'load'):6.0f} ms,"
        f" ready (first 200 drawn) {med(one, 'ready'):6.0f} ms, all events {med(one, 'all'):6.0f} ms"
    )
    print(
        f"      longest main-thread task {max(r['longest'] for r in one):5.0f} ms; rows in the DOM {max(r['rows'] for r in one)};"
        f" scroll to the middle drawn in {med(one, 'scroll'):5.0f} ms"
    )
    print(
        f"      baseline GET /v1/events?run=&limit=200: {api_events:6.1f} ms (ready/baseline {med(one, 'ready') / api_events:.1f});"
        f" all {args.events:,} through the API: {all_events:6.0f} ms (all/baseline {med(one, 'all') / all_events:.1f})"
    )
    print(f"  machine load average while measured: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()

"""What the benchmarks share: a real server process on embedded defaults, pages on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import PageServer, env_with, free_port

BIN = Path(sys.executable).parent
PAGES = Path(__file__).resolve().parents[1] / "tests" / "e2e" / "pages"


@contextmanager
def serving(env: dict[str, str], data_dir: Path):
    """`bctrl-server serve` with this environment, its output in `data_dir/server.log`; yields its base URL
    once /readyz answers, and stops it afterwards."""
    log = open(data_dir / "server.log", "wb")
    proc = subprocess.Popen([str(BIN / "bctrl-server"), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['BCTRL_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((data_dir / "server.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@contextmanager
def server(**extra: str):
    """A `bctrl-server serve` on SQLite in a temporary data dir; yields (base_url, client, data_dir)."""
    with tempfile.TemporaryDirectory(prefix="bctrl-bench-") as tmp:
        env = env_with(
            BCTRL_DATA_DIR=tmp,
            BCTRL_API_KEY="bench-key",
            BCTRL_PORT=str(free_port()),
            BCTRL_LOG_LEVEL="warning",
            **extra,
        )
        with (
            serving(env, Path(tmp)) as url,
            httpx.Client(base_url=url, headers={"Authorization": "Bearer bench-key"}, timeout=60) as client,
        ):
            yield url, client, Path(tmp)


def driver_state(data_dir: Path, runtime_id: str) -> dict:
    """The browser's own endpoint, read from the embedded database (a baseline only a benchmark needs)."""
    with sqlite3.connect(data_dir / "bctrl.sqlite3") as db:
        row = db.execute("SELECT driver_state FROM runtimes WHERE id = ?", (runtime_id.replace("-", ""),)).fetchone()
    return json.loads(row[0])


@contextmanager
def pages():
    srv = PageServer(PAGES)
    try:
        yield srv.url
    finally:
        srv.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"

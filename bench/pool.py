"""The warm pool beside a cold start, same run: two servers (BCTRL_POOL_SIZE=0 and =2), the same user flow
through the bctrl 0.3 client, rounds interleaved, each step timed:

  create   browsers.create(wait=30): the run is active and its CDP URL (the run's lease) is in the answer
  connect  Playwright connect_over_cdp to that URL
  page     the first page of the default context
  goto     page.goto(a loopback page)
  stop     browsers.stop(): answers once the stop is accepted (the teardown goes on in the background)
  gone     from the stop's answer until the browser's processes have exited (not part of the total)

Before each round both servers are left to settle (the pool refilled, the last browser gone), so one
server's background work does not land in the other's round.

    python -m bench.pool [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bctrl import Bctrl
from playwright.sync_api import sync_playwright

from bench.harness import machine, median, pages, percentile, server
from tests.support import browser_root, chromium_pids

STEPS = ("create", "connect", "page", "goto", "stop")
POOL_SIZE = 2


def waiting(data_dir: Path) -> int:
    """Pool browsers this server keeps waiting (the notes beside their profiles, app/pool/markers.py)."""
    count = 0
    for note in (browser_root(data_dir) / "profiles").glob("*.pool"):
        try:
            count += json.loads(note.read_text()).get("runtimeId") is None
        except (OSError, ValueError):
            continue
    return count


def profile_of(data_dir: Path, runtime_id: str) -> str:
    """The browser's profile: named after its runtime (cold), or after the pool id its note names."""
    profiles = browser_root(data_dir) / "profiles"
    for found in profiles.glob(f"{runtime_id}.*"):
        if found.is_dir():
            return str(found)
    for note in profiles.glob("*.pool"):
        if json.loads(note.read_text()).get("runtimeId") == runtime_id:
            return str(note)[: -len(".pool")]
    raise RuntimeError(f"no profile for {runtime_id}")


def settle(data_dir: Path, pooled: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        browsers = len(list((browser_root(data_dir) / "profiles").glob("*.log")))
        if (not pooled and browsers == 0) or (pooled and waiting(data_dir) == POOL_SIZE == browsers):
            time.sleep(0.3)
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not settle in {timeout}s")


def one_round(client: Bctrl, pw, url: str, data_dir: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[name] = (now - t) * 1000
        t = now

    created = client.browsers.create(wait=30)
    step("create")
    browser = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
    step("connect")
    context = browser.contexts[0]
    page = context.pages[0] if context.pages else context.new_page()
    step("page")
    page.goto(url)
    step("goto")
    browser.close()
    fragment = f"--user-data-dir={profile_of(data_dir, created.id)}"
    t = time.perf_counter()  # the client's own disconnect is not the server's
    client.browsers.stop(created.id)
    step("stop")
    times["total"] = sum(times[s] for s in STEPS)
    while chromium_pids(fragment):
        if time.perf_counter() - t > 30:
            raise RuntimeError("browser still running 30 s after its stop")
        time.sleep(0.005)
    step("gone")
    client.browsers.delete(created.id)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with (
        server() as (cold_url, _h1, cold_dir),
        server(BCTRL_POOL_SIZE=str(POOL_SIZE), BCTRL_POOL_FILL_PER_SECOND="4") as (warm_url, _h2, warm_dir),
        pages() as site,
        sync_playwright() as pw,
    ):
        clients = {
            "cold": (Bctrl(token="bench-key", base_url=cold_url), cold_dir, False),
            "warm": (Bctrl(token="bench-key", base_url=warm_url), warm_dir, True),
        }
        url = f"{site}/index.html"
        for client, data_dir, _pooled in clients.values():  # warm both paths once
            settle(warm_dir, True), settle(cold_dir, False)
            one_round(client, pw, url, data_dir)
        for _ in range(args.runs):
            for label, (client, data_dir, _pooled) in clients.items():
                settle(warm_dir, True), settle(cold_dir, False)
                results[label].append(one_round(client, pw, url, data_dir))
    print(f"pool: create -> connect -> goto -> stop, {args.runs} rounds each, pool of {POOL_SIZE} ({machine()})")
    print("  " + " " * 6 + "".join(f"{s:>16}" for s in (*STEPS, "total", "gone")))
    for label, rounds in results.items():
        cells = []
        for name in (*STEPS, "total", "gone"):
            values = [r[name] for r in rounds]
            cells.append(f"{median(values):7.1f}/{percentile(values, 90):<7.1f} ")
        print(f"  {label:6}" + "".join(f"{c:>16}" for c in cells))
    print("  (median/p90 ms; `gone`: after the stop answered, until the browser's processes exited)")
    warm, cold = (median([r["total"] for r in results[k]]) for k in ("warm", "cold"))
    print(f"  ratio warm/cold total: median {warm / cold:.2f}")


if __name__ == "__main__":
    main()

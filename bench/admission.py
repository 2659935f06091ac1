"""Admission throughput: starts granted per second while the queue of starts is full, against the same
server's rate with one client per slot (no queue), in the same run.

Each client loops: `browsers.create(wait=60)` (queued until a slot is granted) -> `browsers.delete`
(stops the browser, freeing its slot). Baseline: as many clients as slots, so no start waits. Queue
full: slots + queue-max clients, so every freed slot has waiters; one more client's start is refused
429 at once (counted, not retried). The ratio says what waiting in the queue costs per start.

    python -m bench.admission [--slots 2] [--queue 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from bctrl import Bctrl
from bctrl._generated.errors import TooManyRequestsError

from bench.harness import machine, median, percentile, server


def _client(url: str) -> Bctrl:
    return Bctrl(token="bench-key", base_url=url, max_retries=0, timeout=120)


def _loop(url: str, rounds: int, waits: list[float], grants: list[float], refused: list[int]) -> None:
    client = _client(url)
    for _ in range(rounds):
        t0 = time.perf_counter()
        try:
            made = client.browsers.create(name=f"adm-{uuid.uuid4().hex[:8]}", wait=60)
        except TooManyRequestsError:
            refused.append(1)
            continue
        # Admitted when the run exists; the wait after that is the browser's own start.
        grants.append(time.perf_counter())
        waits.append((time.perf_counter() - t0) * 1000)
        client.browsers.delete(made.id)


def _phase(url: str, clients: int, rounds: int) -> tuple[float, list[float], int]:
    waits: list[float] = []
    grants: list[float] = []
    refused: list[int] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(_loop, url, rounds, waits, grants, refused) for _ in range(clients)]:
            f.result()
    elapsed = time.perf_counter() - t0
    return len(grants) / elapsed, waits, len(refused)


def _overflow(url: str, queue: int, stop: threading.Event, refused: list[float]) -> None:
    """One client beyond the queue: its starts are refused at once (429, queue full)."""
    client = _client(url)
    while not stop.is_set():
        if httpx.get(f"{url}/pressure").json()["queue"]["depth"] < queue:
            time.sleep(0.05)
            continue
        t0 = time.perf_counter()
        try:
            made = client.browsers.create(name=f"over-{uuid.uuid4().hex[:8]}", wait=60)
            client.browsers.delete(made.id)
        except TooManyRequestsError:
            refused.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--queue", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    extra = {"BCTRL_MAX_RUNTIMES": str(args.slots), "BCTRL_ADMISSION_QUEUE_MAX": str(args.queue)}
    with server(**extra) as (url, _, _):
        _client(url).browsers.list()  # warm the server up
        base_rate, base_waits, _ = _phase(url, args.slots, args.rounds)
        stop, over = threading.Event(), []
        spill = threading.Thread(target=_overflow, args=(url, args.queue, stop, over), daemon=True)
        spill.start()
        full_rate, full_waits, _ = _phase(url, args.slots + args.queue, args.rounds)
        stop.set()
        spill.join(timeout=120)
    print(f"admission throughput ({machine()}; {args.slots} slots, queue of {args.queue}, SQLite)")
    print(
        f"  no queue (1 client a slot):   {base_rate:6.2f} starts/s granted, create median {median(base_waits):.0f} ms"
    )
    print(
        f"  queue full ({args.slots + args.queue} clients):    {full_rate:6.2f} starts/s granted, "
        f"create median {median(full_waits):.0f} ms, p90 {percentile(full_waits, 90):.0f} ms"
    )
    if over:
        print(f"  beyond the queue: {len(over)} starts refused 429 in {median(over):.0f} ms median")
    print(f"  ratio queue-full / no-queue: {full_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()

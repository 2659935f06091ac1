"""The whole lifecycle a user runs, through each generation's own client, in the same server: create
(waiting until the browser runs) -> Playwright connects to the CDP URL -> goto a local page -> stop.

- current: the bctrl 0.3 client (`from bctrl import Bctrl`), `browsers.create(wait=30)` ... `stop(wait=30)`
- seed: the seed REST routes (create in a space launches; a CDP lease; stop)

Median and p90 of N rounds each; the ratio is the current flow's cost against the seed flow's.

    python -m bench.lifecycle [--runs 20]
"""

from __future__ import annotations

import argparse
import time
import uuid

from bctrl import Bctrl
from playwright.sync_api import sync_playwright

from bench.harness import machine, median, pages, percentile, server


def _visit(pw, cdp_url: str, url: str) -> None:
    browser = pw.chromium.connect_over_cdp(cdp_url)
    context = browser.contexts[0]
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(url)
    browser.close()


def current_round(client: Bctrl, pw, url: str) -> float:
    t0 = time.perf_counter()
    created = client.browsers.create(name=f"bench-{uuid.uuid4().hex[:8]}", wait=30)
    _visit(pw, created.current_run.connections.cdp_url, url)
    client.browsers.stop(created.id, wait=30)
    elapsed = (time.perf_counter() - t0) * 1000
    client.browsers.delete(created.id)
    return elapsed


def seed_round(http, space_id: str, pw, url: str) -> float:
    t0 = time.perf_counter()
    runtime = http.post(f"/v1/spaces/{space_id}/runtimes", json={}).json()
    lease = http.post(
        f"/v1/spaces/{space_id}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp", "ttlSeconds": 600}
    ).json()
    _visit(pw, lease["endpoint"]["url"], url)
    http.post(f"/v1/spaces/{space_id}/runtimes/{runtime['id']}/stop")
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    with server() as (base_url, http, _data), pages() as site, sync_playwright() as pw:
        client = Bctrl(token="bench-key", base_url=base_url)
        url = f"{site}/index.html"
        space_id = http.post("/v1/spaces", json={"name": "bench"}).json()["id"]
        current_round(client, pw, url), seed_round(http, space_id, pw, url)  # warm both paths once
        current, seed = [], []
        for _ in range(args.runs):  # interleaved, so drift on the machine affects both alike
            current.append(current_round(client, pw, url))
            seed.append(seed_round(http, space_id, pw, url))
    print(f"lifecycle: create -> connect -> goto -> stop, {args.runs} rounds each ({machine()})")
    for label, values in (("seed routes", seed), ("bctrl 0.3 SDK", current)):
        print(f"  {label:14} median {median(values):7.1f} ms   p90 {percentile(values, 90):7.1f} ms")
    print(f"  ratio current/seed: median {median(current) / median(seed):.2f}")


if __name__ == "__main__":
    main()

"""Proxy overhead: the same Playwright workload directly against Chromium and through the proxy.

1,000 small `evaluate` round trips (p50, p99) and ten full-page screenshots of about 10 MB each,
against the same browser in the same run. Prints proxied/direct ratios.
Targets (issue 3): latency ratio <= 1.05 at p50, throughput ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import time

from playwright.sync_api import sync_playwright

from bench.harness import driver_state, machine, median, pages, percentile, server


def evaluate_latencies(page, count: int) -> list[float]:
    for _ in range(50):  # warm up
        page.evaluate("1")
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        page.evaluate("1")
        out.append((time.perf_counter() - t0) * 1000)
    return out


def screenshot_rate(page, count: int) -> tuple[float, int]:
    page.screenshot(full_page=True)  # warm up
    total = 0
    t0 = time.perf_counter()
    for _ in range(count):
        total += len(page.screenshot(full_page=True))
    return total / (time.perf_counter() - t0) / 1e6, total // count


def run_one(pw, endpoint: str, page_url: str, calls: int, shots: int) -> dict:
    browser = pw.chromium.connect_over_cdp(endpoint)
    page = browser.contexts[0].new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{page_url}/tall.html?bands=36")
    page.wait_for_function("document.title === 'tall page ready'")
    latencies = evaluate_latencies(page, calls)
    mb_per_s, size = screenshot_rate(page, shots)
    page.close()
    browser.close()
    return {"p50": median(latencies), "p99": percentile(latencies, 99), "mbps": mb_per_s, "size": size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="direct/proxied pairs, alternating")
    args = parser.parse_args(argv)

    with server() as (_, client, data_dir), pages() as page_url, sync_playwright() as pw:
        space = client.post("/v1/spaces", json={"name": "bench"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        direct_url = driver_state(data_dir, runtime["id"])["wsUrl"]
        results: dict[str, list[dict]] = {"direct": [], "proxied": []}
        for _ in range(args.rounds):
            for mode in ("direct", "proxied"):
                if mode == "direct":
                    endpoint = direct_url
                else:
                    lease = client.post(
                        f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
                    ).json()
                    endpoint = lease["endpoint"]["url"]
                results[mode].append(run_one(pw, endpoint, page_url, args.calls, args.shots))
                if mode == "proxied":
                    client.delete(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{lease['id']}")
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

    def best(mode: str, key: str, high: bool = False) -> float:
        values = [r[key] for r in results[mode]]
        return max(values) if high else min(values)

    size_mb = results["direct"][0]["size"] / 1e6
    print(
        f"proxy_overhead ({machine()}; {args.calls} evaluate calls, {args.shots} screenshots of {size_mb:.1f} MB,"
        f" best of {args.rounds} alternating rounds)"
    )
    print(f"{'':12}{'direct':>12}{'proxied':>12}{'ratio':>10}")
    for key, label, high, unit in (
        ("p50", "eval p50", False, "ms"),
        ("p99", "eval p99", False, "ms"),
        ("mbps", "screenshots", True, "MB/s"),
    ):
        d, p = best("direct", key, high), best("proxied", key, high)
        print(f"{label:12}{d:>10.3f}{unit[:2]:>2}{p:>10.3f}{unit[:2]:>2}{p / d:>10.3f}")
    print("targets: eval p50 ratio <= 1.05, screenshot throughput ratio >= 0.90")


if __name__ == "__main__":
    main()

"""API replicas behind nginx (issue 18): what a load balancer and a second replica cost or bring.

- Start rate (the local driver by default, `--start-driver`): N browsers started through the balancer,
  `--concurrency` at a time (seed create, which answers once the browser is active), with 1 and with 2
  replicas behind it: browsers started a second and each start's latency (median, p90). The ratio is
  2 replicas over 1.
- CDP round trip: `Runtime.evaluate` of `1` over a Playwright CDPSession, through the balancer and a
  replica (the lease's URL, which names the balancer) beside the browser's own endpoint, same browser,
  same run, alternating rounds; the ratio is through / direct. A replica without the balancer is shown too.
- Takeover: the replica that owns a browser's run SIGKILLed; the time until the `runtime.adopted`
  event can be read from the other replica (polled every 50 ms), over `--kills` rounds: once with the
  killed process reaped at once (its pid gone: the same machine's fast path), once left a zombie (its pid
  alive, as a replica on another machine looks: only its lease running out tells).

Every replica runs on PostgreSQL and Redis (127.0.0.1, as the tests use them), in a database of its own
made for the run, with the driver `--driver` for the CDP and takeover parts (docker by default: needs the
engine and bctrl/chromium, `make images`; `local` runs Chromium processes). nginx: scripts/ensure-nginx.sh.

    .venv/bin/python bench/replicas.py [--driver docker] [--start-driver local] [--browsers 8]
        [--concurrency 4] [--calls 500] [--rounds 3] [--kills 3] [--skip start,cdp,takeover]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: the repository's root on the path instead of bench/ (as `-m bench.replicas` has it),
    # or bench's modules could shadow packages of the same name (as bench/mcp.py once shadowed `mcp`).
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import asyncpg
import httpx
from playwright.sync_api import sync_playwright

from bench.harness import machine, median, percentile
from tests.docker.lb import load_balancer
from tests.e2e.conftest import LiveServer, create_db, drop_db, start_server, stop_server
from tests.support import free_port

IMAGE = "bctrl/chromium:latest"


def driver_env(driver: str, browsers: int) -> dict[str, str]:
    env = {"BCTRL_LOG_LEVEL": "warning", "BCTRL_MAX_RUNTIMES": str(max(8, browsers + 2))}
    if driver == "docker":
        env.update(BCTRL_DRIVER="docker", BCTRL_DOCKER_NETWORK="host", BCTRL_DOCKER_IMAGE=IMAGE)
        env.update(BCTRL_LAUNCH_TIMEOUT_SECONDS="90")
    return env


class Deployment:
    """`count` replicas on one fresh database behind nginx; replicas can be killed and started again."""

    def __init__(self, tmp: Path, count: int, env: dict[str, str]) -> None:
        self.tmp, self.port = tmp, free_port()
        self.env = {**env, "BCTRL_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}
        self.database = create_db()
        self.key, self.prefix = f"bench_{uuid.uuid4().hex}", f"bctrl-bench-{uuid.uuid4().hex[:8]}"
        self.servers: list[LiveServer] = []
        for i in range(count):
            self.servers.append(start_server(tmp / f"srv{i}", self.database, self.key, self.prefix, **self.env))

    def client(self, base: str) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {self.key}"}, timeout=120)

    def restart(self, index: int) -> None:
        old = self.servers[index]
        port = int(old.url.rsplit(":", 1)[1])
        self.servers[index] = start_server(
            self.tmp / f"srv{index}-{uuid.uuid4().hex[:4]}", self.database, self.key, self.prefix, port, **self.env
        )

    def close(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(stop_server, self.servers))
        drop_db(self.database)

    def fetch(self, query: str, *args):
        async def run():
            conn = await asyncpg.connect(self.database.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                return await conn.fetchrow(query, *args)
            finally:
                await conn.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
            return pool.submit(asyncio.run, run()).result()


@contextmanager
def deployed(count: int, env: dict[str, str]):
    with tempfile.TemporaryDirectory(prefix="bctrl-bench-replicas-") as tmp, ExitStack() as stack:
        made = Deployment(Path(tmp), count, env)
        stack.callback(made.close)
        lb = stack.enter_context(load_balancer(made.servers, Path(tmp) / "nginx", port=made.port))
        yield made, lb


def _space(client: httpx.Client) -> str:
    return client.post("/v1/spaces", json={"name": f"bench-{uuid.uuid4().hex[:6]}"}).json()["id"]


def _start(client: httpx.Client, space_id: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    runtime = client.post(f"/v1/spaces/{space_id}/runtimes", json={}).json()
    elapsed = time.perf_counter() - t0
    if runtime.get("status") != "active":
        raise RuntimeError(f"a start failed: {runtime}")
    return elapsed * 1000, runtime


def _stop_all(client: httpx.Client, runtimes: list[dict]) -> None:
    for runtime in runtimes:
        client.post(f"/v1/runtimes/{runtime['id']}/stop")


# --- start rate -------------------------------------------------------------------------------------------


def start_rate(count: int, env: dict[str, str], browsers: int, concurrency: int) -> dict:
    with deployed(count, env) as (made, lb), made.client(lb.url) as client:
        space = _space(client)
        _stop_all(client, [_start(client, space)[1]])  # warm-up: the first start pays the cold caches
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(lambda _: _start(client, space), range(browsers)))
        wall = time.perf_counter() - t0
        _stop_all(client, [r for _, r in results])
        latencies = [ms for ms, _ in results]
        return {"rate": browsers / wall, "p50": median(latencies), "p90": percentile(latencies, 90)}


# --- CDP round trip ---------------------------------------------------------------------------------------


def _round_trips(pw, endpoint: str, calls: int) -> list[float]:
    browser = pw.chromium.connect_over_cdp(endpoint)
    try:
        page = browser.contexts[0].pages[0] if browser.contexts[0].pages else browser.contexts[0].new_page()
        session = browser.contexts[0].new_cdp_session(page)
        for _ in range(50):  # warm up
            session.send("Runtime.evaluate", {"expression": "1"})
        out = []
        for _ in range(calls):
            t0 = time.perf_counter()
            session.send("Runtime.evaluate", {"expression": "1"})
            out.append((time.perf_counter() - t0) * 1000)
        session.detach()
        return out
    finally:
        browser.close()


def cdp_round_trip(env: dict[str, str], calls: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per mode, (median, p99) of each round, in ms."""
    with deployed(1, env) as (made, lb), made.client(lb.url) as client, sync_playwright() as pw:
        space = _space(client)
        _, runtime = _start(client, space)
        try:
            state = made.fetch("SELECT driver_state FROM runtimes WHERE id = $1", uuid.UUID(runtime["id"]))[0]
            direct = json.loads(state)["wsUrl"]
            results: dict[str, list[tuple[float, float]]] = {"direct": [], "replica": [], "balancer": []}
            modes = list(results)
            for n in range(rounds):
                # Each round starts with another mode, so none always runs first (on a cold connection).
                for mode in modes[n % 3 :] + modes[: n % 3]:
                    if mode == "direct":
                        endpoint = direct
                    else:
                        lease = client.post(
                            f"/v1/spaces/{space}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
                        ).json()
                        endpoint = lease["endpoint"]["url"]  # names the balancer (BCTRL_PUBLIC_URL)
                        if mode == "replica":
                            endpoint = endpoint.replace(lb.address, made.servers[0].url.split("//", 1)[1])
                    trips = _round_trips(pw, endpoint, calls)
                    results[mode].append((median(trips), percentile(trips, 99)))
                    if mode != "direct":
                        client.delete(f"/v1/spaces/{space}/runtimes/{runtime['id']}/connections/{lease['id']}")
            return results
        finally:
            _stop_all(client, [runtime])


# --- takeover ---------------------------------------------------------------------------------------------


def takeover(env: dict[str, str], kills: int, reap: bool) -> list[float]:
    """Seconds from the owner's SIGKILL until `runtime.adopted` is readable from the survivor. `reap`: the
    killed process is reaped at once (as a supervisor would), so the survivors see its pid gone (the same
    machine's fast path); otherwise it stays a zombie, its pid alive to them, as a replica on another
    machine would look: only its lease running out (BCTRL_OWNERSHIP_LEASE_SECONDS) tells them."""
    out = []
    with deployed(2, env) as (made, lb), made.client(lb.url) as client:
        space = _space(client)
        for _ in range(kills):
            _, runtime = _start(client, space)
            row = made.fetch(
                "SELECT p.pid FROM runtimes r JOIN server_processes p ON p.id = r.driver_state->>'serverInstance' "
                "WHERE r.id = $1",
                uuid.UUID(runtime["id"]),
            )
            owner = next(i for i, s in enumerate(made.servers) if s.process.pid == row["pid"])
            survivor, killed = made.servers[1 - owner], made.servers[owner].process
            path = f"/v1/runs/{runtime['activeRunId']}/events"
            with made.client(survivor.url) as direct:
                t0 = time.perf_counter()
                killed.send_signal(signal.SIGKILL)
                if reap:
                    killed.wait()
                while not direct.get(path, params={"type": "runtime.adopted"}).json()["data"]:
                    if time.perf_counter() - t0 > 120:
                        raise RuntimeError("no runtime.adopted within 120 s")
                    time.sleep(0.05)
                out.append(time.perf_counter() - t0)
            killed.wait()
            made.restart(owner)
            _stop_all(client, [runtime])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", choices=("docker", "local"), default="docker")
    # Docker on vfs storage (these machines) copies the image's whole filesystem per container: tens of
    # seconds that would hide the control plane; start rates default to the local driver.
    parser.add_argument("--start-driver", choices=("docker", "local"), default="local")
    parser.add_argument("--browsers", type=int, default=8, help="browsers started per start-rate measure")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--calls", type=int, default=500, help="Runtime.evaluate calls per CDP round")
    parser.add_argument("--rounds", type=int, default=3, help="CDP rounds, each mode once a round (best kept)")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: start,cdp,takeover")
    args = parser.parse_args(argv)
    env, skip = driver_env(args.driver, args.browsers), set(filter(None, args.skip.split(",")))
    print(f"replicas ({machine()}; nginx in front; CDP and takeover on the {args.driver} driver)")

    if "start" not in skip:
        starts = driver_env(args.start_driver, args.browsers)
        one = start_rate(1, starts, args.browsers, args.concurrency)
        two = start_rate(2, starts, args.browsers, args.concurrency)
        print(
            f"start rate ({args.start_driver} driver): {args.browsers} browsers, {args.concurrency} at a time,"
            " through the balancer"
        )
        print(f"{'':14}{'1 replica':>12}{'2 replicas':>12}{'ratio':>10}")
        for key, label, unit in (("rate", "browsers/s", "/s"), ("p50", "start p50", "ms"), ("p90", "start p90", "ms")):
            print(f"{label:14}{one[key]:>10.2f}{unit:>2}{two[key]:>10.2f}{unit:>2}{two[key] / one[key]:>10.3f}")

    if "cdp" not in skip:
        trips = cdp_round_trip(env, args.calls, args.rounds)
        print(
            f"CDP Runtime.evaluate(1) round trip over {args.calls} calls, best of {args.rounds} rounds in rotating order"
        )
        print(f"{'':26}{'p50':>10}{'ratio':>8}{'p99':>10}{'ratio':>8}")
        d50, d99 = min(p for p, _ in trips["direct"]), min(p for _, p in trips["direct"])
        for mode, label in (
            ("direct", "direct to the browser"),
            ("replica", "a replica"),
            ("balancer", "nginx + a replica"),
        ):
            p50, p99 = min(p for p, _ in trips[mode]), min(p for _, p in trips[mode])
            print(f"{label:26}{p50:>8.3f}ms{p50 / d50:>8.3f}{p99:>8.3f}ms{p99 / d99:>8.3f}")

    if "takeover" not in skip:
        print(
            f"takeover: owner SIGKILLed until runtime.adopted is readable from the other replica ({args.kills} kills)"
        )
        for reap, label in ((True, "pid gone (same machine)"), (False, "pid alive (as another machine)")):
            times = takeover(env, args.kills, reap)
            print(f"  {label:32} median {median(times):6.2f} s, max {max(times):6.2f} s")


if __name__ == "__main__":
    main()

"""Launch time per driver: API create (seed, launches at once) until the runtime is `active`, beside
the bare start of the same browser measured in the same run: the Chromium process with the local
driver's flags, or `docker run` of the runtime image, until /json/version answers. Median and p90
of N; the ratio is the control plane's overhead (target: at most 1.15 for both drivers).

    python -m bench.launch [--runs 20] [--drivers local,docker]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from app.core.config import detect_chromium
from app.core.driver import LaunchSpec
from app.drivers.local import chromium_args
from bench.harness import machine, median, percentile, server
from tests.support import free_port

IMAGE = "bctrl/chromium:latest"


# Made once, before any timing: building an HTTP client costs tens of milliseconds (its TLS trust
# store), which would otherwise inflate the baseline.
HTTP = httpx.Client(timeout=1, trust_env=False, verify=False)


def _until_version(url_of: Callable[[], str | None], t0: float) -> float:
    while True:
        url = url_of()
        if url:
            try:
                if HTTP.get(f"{url}/json/version").status_code == 200:
                    return (time.perf_counter() - t0) * 1000
            except httpx.HTTPError:
                pass
        time.sleep(0.01)


def bare_process_start() -> float:
    profile = Path(tempfile.mkdtemp(prefix="bctrl-bare-"))
    args = chromium_args(profile, LaunchSpec(runtime_id=uuid.uuid4()), os.geteuid() == 0)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [detect_chromium(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )

    def url() -> str | None:
        port_file = profile / "DevToolsActivePort"
        text = port_file.read_text() if port_file.exists() else ""
        return f"http://127.0.0.1:{text.split()[0]}" if text.strip() else None

    try:
        return _until_version(url, t0)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def bare_container_start() -> float:
    """`docker run` of the runtime image with the driver's own options, host network, a free port."""
    port, name = free_port(), f"bctrl-bench-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "--memory",
            "2g",
            "--cpus",
            "2",
            "--pids-limit",
            "1024",
            "--shm-size",
            "512m",
            "--tmpfs",
            "/tmp:rw,nosuid,nodev,size=1g",
            "--tmpfs",
            "/home/chrome:rw,nosuid,nodev,size=64m",
            "--tmpfs",
            "/downloads:rw,nosuid,nodev,size=1g",
            "-e",
            f"BCTRL_CDP_PORT={port}",
            "-e",
            "BCTRL_CDP_BIND=127.0.0.1",
            IMAGE,
        ],
        check=True,
        capture_output=True,
    )
    try:
        return _until_version(lambda: f"http://127.0.0.1:{port}", t0)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def api_starts(runs: int, **env: str) -> list[float]:
    times: list[float] = []
    with server(**env) as (_, client, _data):
        space = client.post("/v1/spaces", json={"name": "bench"}).json()
        for _ in range(runs):
            t0 = time.perf_counter()
            runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
            times.append((time.perf_counter() - t0) * 1000)
            assert runtime["status"] == "active", runtime
            client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
    return times


def report(label: str, bare: list[float], api: list[float]) -> None:
    print(f"  {label}")
    print(f"    bare start to /json/version : median {median(bare):7.1f} ms   p90 {percentile(bare, 90):7.1f} ms")
    print(f"    API create until active     : median {median(api):7.1f} ms   p90 {percentile(api, 90):7.1f} ms")
    print(
        f"    ratio                       : median {median(api) / median(bare):.2f}   "
        f"p90 {percentile(api, 90) / percentile(bare, 90):.2f}   (target <= 1.15)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--drivers", default="local,docker")
    args = parser.parse_args(argv)
    drivers = args.drivers.split(",")
    print(f"launch ({machine()}; {args.runs} launches each)")
    if "local" in drivers:
        # Interleaved warm-up of one each, so neither side pays the first cold start alone.
        bare_process_start()
        report(
            "local driver (Chromium process)",
            [bare_process_start() for _ in range(args.runs)],
            api_starts(args.runs + 1)[1:],
        )
    if "docker" in drivers:
        if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
            print(f"  docker driver: skipped ({IMAGE} is not built; run `make images`)")
            return
        bare_container_start()
        report(
            "docker driver (container)",
            [bare_container_start() for _ in range(args.runs)],
            api_starts(args.runs + 1, BCTRL_DRIVER="docker", BCTRL_DOCKER_NETWORK="host", BCTRL_DOCKER_IMAGE=IMAGE)[1:],
        )


if __name__ == "__main__":
    main()

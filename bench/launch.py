"""Launch time: API create (seed, launches at once) until the runtime is `active`, next to a bare
Chromium start until its /json/version answers, with the local driver's own flags. Median of N."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from app.core.config import detect_chromium
from app.drivers.base import LaunchSpec
from app.drivers.local import chromium_args
from bench.harness import machine, median, server


def bare_chromium_start() -> float:
    profile = Path(tempfile.mkdtemp(prefix="bctrl-bare-"))
    args = chromium_args(profile, LaunchSpec(runtime_id=uuid.uuid4()), os.geteuid() == 0)
    t0 = time.perf_counter()
    proc = subprocess.Popen([detect_chromium(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while True:
            port_file = profile / "DevToolsActivePort"
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=1).status_code == 200:
                        return (time.perf_counter() - t0) * 1000
                except httpx.HTTPError:
                    pass
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    bare = [bare_chromium_start() for _ in range(args.runs)]
    api: list[float] = []
    with server() as (_, client, _data):
        space = client.post("/v1/spaces", json={"name": "bench"}).json()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
            api.append((time.perf_counter() - t0) * 1000)
            assert runtime["status"] == "active", runtime
            client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
    print(f"launch_time ({machine()}; median of {args.runs})")
    print(f"  bare Chromium to /json/version : {median(bare):8.1f} ms")
    print(f"  API create until active        : {median(api):8.1f} ms   (ratio {median(api) / median(bare):.2f})")


if __name__ == "__main__":
    main()

"""Live view: frame rate and delay to 1 and 10 viewers of a page that repaints on every animation
frame, and the server's CPU per viewer; beside a client reading the same screencast straight from
the browser (no server in between), measured in the same run.

Delay is from the browser's capture of a frame (the screencast's own timestamp, taken as the page
paints) to its arrival at the viewer. Targets: at least 10 frames/s to each of ten viewers, median
delay under 250 ms.

    python -m bench.live [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

import orjson
import websockets
from playwright.async_api import async_playwright

from bench.harness import driver_state, machine, pages, percentile, server

SCREENCAST = {"format": "jpeg", "quality": 70, "maxWidth": 1280, "maxHeight": 1280, "everyNthFrame": 1}


def _server_pid(data_dir: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    b"bctrl-server" in (entry / "cmdline").read_bytes()
                    and f"BCTRL_DATA_DIR={data_dir}".encode() in (entry / "environ").read_bytes()
                ):
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("server process not found")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _viewer(uri: str, seconds: float, out: list[tuple[float, float]]) -> None:
    async with websockets.connect(uri, max_size=None) as ws:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.time()))
            except TimeoutError:
                break
            message = orjson.loads(raw)
            if message["type"] == "frame":
                now = time.time()
                out.append((now, (now - message["timestamp"]) * 1000))


async def _direct(ws_url: str, target_id: str, seconds: float) -> list[tuple[float, float]]:
    """The same screencast read straight from the browser: the floor for any relay."""
    frames: list[tuple[float, float]] = []
    async with websockets.connect(ws_url, max_size=None) as ws:
        ids = iter(range(1, 10**6))

        async def call(method: str, params: dict, session: str | None = None) -> None:
            message = {"id": next(ids), "method": method, "params": params}
            if session:
                message["sessionId"] = session
            await ws.send(orjson.dumps(message).decode())

        await call("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        session = None
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.time())))
            except TimeoutError:
                break
            if session is None and "result" in message and "sessionId" in message["result"]:
                session = message["result"]["sessionId"]
                await call("Page.startScreencast", SCREENCAST, session)
            elif message.get("method") == "Page.screencastFrame":
                now = time.time()
                frames.append((now, (now - message["params"]["metadata"]["timestamp"]) * 1000))
                await call("Page.screencastFrameAck", {"sessionId": message["params"]["sessionId"]}, session)
        if session:
            await call("Page.stopScreencast", {}, session)
    return frames


def _rate(frames: list[tuple[float, float]], seconds: float) -> float:
    return len(frames) / seconds


async def run(seconds: float) -> None:
    with server() as (url, client, data_dir), pages() as pages_url:
        pid = _server_pid(data_dir.resolve())
        space = client.post("/v1/spaces", json={"name": "bench-live"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={"recording": False}).json()
        run_id = runtime["activeRunId"]
        cdp = client.post(
            f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
        ).json()["endpoint"]["url"]
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(cdp)
            page = browser.contexts[0].pages[0] if browser.contexts[0].pages else await browser.contexts[0].new_page()
            await page.set_viewport_size({"width": 1280, "height": 720})
            await page.goto(f"{pages_url}/clock.html")
            target_id = (await (await page.context.new_cdp_session(page)).send("Target.getTargetInfo"))["targetInfo"][
                "targetId"
            ]
            state = driver_state(data_dir, runtime["id"])

            direct = await _direct(state["wsUrl"], target_id, seconds)
            results = {}
            for count in (1, 10):
                token = client.post(f"/v1/runs/{run_id}/live", json={}).json()["url"].split("token=", 1)[1]
                uri = f"{url.replace('http', 'ws')}/v1/live/socket?token={token}"
                per_viewer: list[list[tuple[float, float]]] = [[] for _ in range(count)]
                cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
                await asyncio.gather(*(_viewer(uri, seconds, out) for out in per_viewer))
                cpu = (_cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
                # The first second includes connecting and the screencast's start: leave it out.
                steady = [[f for f in frames if f[0] >= frames[0][0] + 1.0] if frames else [] for frames in per_viewer]
                results[count] = (steady, cpu)
            await browser.close()

    print(f"live ({machine()}; {seconds:g} s per measurement, 1280x720 page repainting every frame)")
    d_delays = [d for _, d in direct[len(direct) // 10 :]]
    print(
        f"  direct CDP screencast (no server) : {_rate(direct, seconds):5.1f} frames/s   "
        f"delay median {statistics.median(d_delays):6.1f} ms  p90 {percentile(d_delays, 90):6.1f} ms"
    )
    for count, (steady, cpu) in results.items():
        rates = [_rate(frames, seconds - 1.0) for frames in steady]
        delays = [d for frames in steady for _, d in frames]
        print(
            f"  {count:2d} viewer(s) through the server   : {min(rates):5.1f} frames/s to the slowest "
            f"(mean {statistics.mean(rates):.1f})   delay median {statistics.median(delays):6.1f} ms  "
            f"p90 {percentile(delays, 90):6.1f} ms   server CPU {cpu * 100:5.1f}% "
            f"({cpu * 100 / count:.1f}% per viewer)"
        )
    ten_rates = [_rate(frames, seconds - 1.0) for frames in results[10][0]]
    ten_delays = [d for frames in results[10][0] for _, d in frames]
    print(
        f"  targets: >= 10 frames/s to each of ten viewers: {min(ten_rates):.1f} "
        f"({'met' if min(ten_rates) >= 10 else 'missed'}); median delay < 250 ms: "
        f"{statistics.median(ten_delays):.0f} ms ({'met' if statistics.median(ten_delays) < 250 else 'missed'}); "
        f"ratio of rates, ten viewers / direct: {statistics.mean(ten_rates) / _rate(direct, seconds):.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()

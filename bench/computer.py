"""Computer use: a round trip an agent makes (a screenshot, then a click) through the API, beside the
same two CDP commands sent straight to the browser (Page.captureScreenshot, then Input.dispatchMouseEvent
pressed and released), on the same page of the same browser. Median of 50 each; prints both and the
ratio API/direct.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from app.cdp.client import CdpClient
from bench.harness import driver_state, machine, median, pages, server

VERSION = {"BCTRL-Version": "2026-10-03"}


async def _direct(ws_url: str, page_url: str, rounds: int, warmup: int) -> list[float]:
    cdp = await CdpClient.open(ws_url, lambda *_: None)
    try:
        targets = (await cdp.send("Target.getTargets"))["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = (await cdp.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}))[
            "sessionId"
        ]
        await cdp.send("Page.enable", None, session)
        await cdp.send("Page.navigate", {"url": f"{page_url}/controls.html"}, session)
        await asyncio.sleep(1.0)
        times = []
        for i in range(warmup + rounds):
            t0 = time.perf_counter()
            await cdp.send("Page.captureScreenshot", {"format": "jpeg", "quality": 80}, session)
            for kind in ("mousePressed", "mouseReleased"):
                point = {"type": kind, "x": 300, "y": 150, "button": "left", "clickCount": 1}
                await cdp.send("Input.dispatchMouseEvent", point, session)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
        return times
    finally:
        await cdp.close()


async def _api(url: str, browser_id: str, rounds: int, warmup: int) -> list[float]:
    headers = {"Authorization": "Bearer bench-key", **VERSION}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        times = []
        for i in range(warmup + rounds):
            t0 = time.perf_counter()
            shot = await client.post(f"/v1/browsers/{browser_id}/computer/screenshot", json={})
            shot.raise_for_status()
            click = await client.post(f"/v1/browsers/{browser_id}/computer/click", json={"coordinate": [300, 150]})
            click.raise_for_status()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
        return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    with server() as (url, client, data_dir), pages() as page_url:
        created = client.post("/v1/browsers", json={"name": "bench-computer"}, params={"wait": 30}, headers=VERSION)
        created.raise_for_status()
        browser_id = created.json()["id"]
        try:
            ws_url = driver_state(data_dir, browser_id)["wsUrl"]
            direct = asyncio.run(_direct(ws_url, page_url, args.rounds, args.warmup))
            api = asyncio.run(_api(url, browser_id, args.rounds, args.warmup))
        finally:
            client.delete(f"/v1/browsers/{browser_id}", headers=VERSION)

    d, a = median(direct), median(api)
    print(f"computer ({machine()}; screenshot + click, median of {args.rounds} after {args.warmup} warm-up)")
    print(f"{'':16}{'median':>10}")
    print(f"{'direct CDP':16}{d:>8.2f}ms")
    print(f"{'through the API':16}{a:>8.2f}ms")
    print(f"{'ratio API/direct':16}{a / d:>10.2f}")


if __name__ == "__main__":
    main()

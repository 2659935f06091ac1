"""Recordings: a run of a page that turns red, green, then blue yields a recording as long as the run
whose frames show those colours in that order; the replay page plays it beside the run's activity;
the video is a run artifact. Without ffmpeg the frames themselves are the artifact."""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile
from io import BytesIO

import pytest

from tests.e2e.conftest import cluster, lease
from tests.e2e.test_cdp import wait_for
from tests.e2e.test_live import dominant, pw, viewer_browser  # noqa: F401  (fixtures)

PIXEL_JS = """async (seq) => {
  const img = new Image(); img.src = `/v1/replay/frames/${seq}?token=` + new URLSearchParams(location.search).get('token');
  await img.decode();
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(Math.floor(c.width * 0.5), Math.floor(c.height * 0.8), 1, 1).data.slice(0, 3));
}"""


def _record_colours(pw, client, space_id: str, pages) -> dict:  # noqa: F811
    runtime = client.post(f"/v1/spaces/{space_id}/runtimes", json={}).json()
    run_id = runtime["activeRunId"]
    try:
        browser = pw.chromium.connect_over_cdp(lease(client, runtime).json()["endpoint"]["url"])
        page = browser.contexts[0].pages[0] if browser.contexts[0].pages else browser.contexts[0].new_page()
        page.goto(f"{pages.url}/colours.html")
        page.wait_for_function("window.colour === 'blue'", timeout=10_000)
        page.wait_for_timeout(700)
        during = client.post(f"/v1/runs/{run_id}/recording", json={}).json()
        browser.close()
    finally:
        client.post(f"/v1/spaces/{space_id}/runtimes/{runtime['id']}/stop")
    return {"runtime": runtime, "run_id": run_id, "during": during}


def _colours_in_order(viewer_browser, replay_url: str, frames: list[dict]) -> list[str]:  # noqa: F811
    page = viewer_browser.new_page(bypass_csp=True)
    page.goto(replay_url)
    seen: list[str] = []
    for frame in frames:
        colour = dominant(page.evaluate(PIXEL_JS, frame["seq"]))
        if colour in ("red", "green", "blue") and (not seen or seen[-1] != colour):
            seen.append(colour)
    page.close()
    return seen


def test_recording_of_a_changing_page(live, space, pages, pw, viewer_browser, tmp_path):  # noqa: F811
    with live.client() as client:
        recorded = _record_colours(pw, client, space["id"], pages)
        run_id = recorded["run_id"]
        # While the run was active: what was recorded so far.
        assert recorded["during"]["status"] == "preparing" and recorded["during"]["durationMs"] > 1500

        ready = wait_for(
            lambda: (
                (r := client.post(f"/v1/runs/{run_id}/recording", json={"expiresInSeconds": 600}).json())["status"]
                == "ready"
                and r
            ),
            timeout=60,
        )
        # The run announces it (webhooks and drains follow the run's events).
        announced = client.get(f"/v1/runs/{run_id}/events", params={"type": "recording.ready"}).json()["data"]
        assert [e["data"]["status"] for e in announced] == ["ready"], announced
        run = client.get(f"/v1/runs/{run_id}").json()
        run_ms = run["durationSeconds"] * 1000 if run.get("durationSeconds") else None
        assert ready["durationMs"] > 2500 and ready["durationSeconds"] == pytest.approx(ready["durationMs"] / 1000)
        if run_ms is not None:
            assert abs(ready["durationMs"] - run_ms) < 1000

        token = ready["url"].split("token=", 1)[1]
        data = client.get("/v1/replay/data", params={"token": token}).json()
        frames = data["frames"]
        assert len(frames) >= 3 and [f["t"] for f in frames] == sorted(f["t"] for f in frames)
        assert _colours_in_order(viewer_browser, ready["url"], frames) == ["red", "green", "blue"]
        # The colour changes sit about a second apart on the recording's timeline.
        assert frames[-1]["t"] - frames[0]["t"] >= 1800

        # The video is a run artifact, about as long as the recorded span.
        artifact = next(
            a for a in client.get(f"/v1/runs/{run_id}/artifacts").json()["data"] if a["kind"] == "recording"
        )
        assert artifact["contentType"] == "video/webm" and artifact["id"] == ready["artifactId"]
        video = tmp_path / "recording.webm"
        video.write_bytes(client.get(artifact["downloadUrl"]).content)
        probe = json.loads(
            subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(video)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        # Within a second, as the run's own length above: frames come about every 200 ms, and a saturated
        # host delays the last ones.
        assert abs(float(probe["format"]["duration"]) * 1000 - (ready["durationMs"] - frames[0]["t"])) < 1000

        # The replay page: frames beside the run's activity, seekable.
        replay = viewer_browser.new_page(viewport={"width": 1200, "height": 700}, bypass_csp=True)
        replay.goto(ready["iframeUrl"])
        replay.wait_for_function("window.__replay.loaded && window.__replay.frames.length > 0")
        assert replay.locator(".item").count() > 0
        assert any("colours.html" in text for text in replay.locator(".item .m").all_text_contents())
        replay.evaluate("window.__replay.seek(window.__replay.durationMs)")
        replay.wait_for_function("document.getElementById('screen').complete")
        replay.screenshot(path=str(tmp_path / "replay.png"))
        assert replay.evaluate("window.__replay.seq") == frames[-1]["seq"]
        replay.close()


def test_recording_is_not_available_when_disabled(live, pages, stop_afterwards):
    with live.client() as client:
        created = client.post("/v1/runtimes", json={"start": True, "recording": False})
        assert created.status_code == 201, created.text
        runtime = created.json()
        stop_afterwards(runtime["id"])
        run_id = runtime["connection"]["runId"]
        time.sleep(1.0)
        assert client.post(f"/v1/runs/{run_id}/recording", json={}).json()["status"] == "not_available"
        client.post(f"/v1/runtimes/{runtime['id']}/stop")
        assert client.post(f"/v1/runs/{run_id}/recording", json={}).json()["status"] == "not_available"


def test_without_ffmpeg_the_frames_are_the_artifact(tmp_path, pages, pw, viewer_browser):  # noqa: F811
    with cluster(tmp_path, BCTRL_FFMPEG_PATH="none") as [server], server.client() as client:
        space = client.post("/v1/spaces", json={"name": "no-ffmpeg"}).json()
        run_id = _record_colours(pw, client, space["id"], pages)["run_id"]
        ready = wait_for(
            lambda: (r := client.post(f"/v1/runs/{run_id}/recording", json={}).json())["status"] == "ready" and r,
            timeout=60,
        )
        artifact = next(
            a for a in client.get(f"/v1/runs/{run_id}/artifacts").json()["data"] if a["kind"] == "recording"
        )
        assert artifact["contentType"] == "application/zip"
        archive = zipfile.ZipFile(BytesIO(client.get(artifact["downloadUrl"]).content))
        index = json.loads(archive.read("index.json"))
        assert len(index) >= 3 and all(f"frames/{e['seq']:06d}.jpg" in archive.namelist() for e in index)
        assert _colours_in_order(viewer_browser, ready["url"], index) == ["red", "green", "blue"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_the_recording_not_the_run(tmp_path, pages, pw):  # noqa: F811
    recordings = tmp_path / "srv0" / "recordings"
    recordings.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(recordings)], check=True)
    try:
        with cluster(tmp_path) as [server], server.client() as client:
            space = client.post("/v1/spaces", json={"name": "full-disk"}).json()
            runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
            run_id = runtime["activeRunId"]
            browser = pw.chromium.connect_over_cdp(lease(client, runtime).json()["endpoint"]["url"])
            page = browser.contexts[0].pages[0] if browser.contexts[0].pages else browser.contexts[0].new_page()
            page.goto(f"{pages.url}/clock.html")  # a new picture on every frame fills 200 KB quickly
            failed = wait_for(
                lambda: (r := client.post(f"/v1/runs/{run_id}/recording", json={}).json())["status"] == "failed" and r,
                timeout=30,
            )
            assert failed["failure"]["code"] == "recording.storage_failed"
            assert "space" in failed["failure"]["message"].lower()
            # The run goes on: the browser still answers, the runtime is active.
            assert page.evaluate("1 + 1") == 2
            assert client.get(f"/v1/runs/{run_id}").json()["status"] == "active"
            browser.close()
            client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
            assert client.get(f"/v1/runs/{run_id}").json()["status"] == "completed"
            assert client.post(f"/v1/runs/{run_id}/recording", json={}).json()["status"] == "failed"
    finally:
        subprocess.run(["umount", "-l", str(recordings)], check=False)

"""Following runs live: SSE streams (resume without gaps, across two server processes), long-poll
wait, and what activity and commands show afterwards."""

from __future__ import annotations

import json
import threading
import time

import httpx
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import cluster, lease
from tests.e2e.test_cdp import events_of, wait_for


def sse_frames(response: httpx.Response):
    """Parse text/event-stream into (event, id, data) tuples."""
    event, ident, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, ident, json.loads("\n".join(data))
            event, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "id":
                ident = value
            elif field == "data":
                data.append(value)


def drive(url: str, pages_url: str, steps: int = 3, linger_ms: int = 0) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(url)
        page = browser.contexts[0].new_page()
        for i in range(steps):
            page.goto(f"{pages_url}/{'one' if i % 2 == 0 else 'two'}.html")
            page.wait_for_load_state("load")
        page.wait_for_timeout(linger_ms)
        page.close()
        browser.close()


def test_sse_resumes_without_gaps_and_ends_with_run_ended(live, pages, stop_afterwards):
    with live.client() as client:
        started = client.post("/v1/runtimes", json={"start": True}).json()
        run_id, runtime_id = started["activeRunId"], started["id"]
        stop_afterwards(runtime_id)
        cdp_url = started["connection"]["cdpUrl"]
        seen: list[dict] = []
        last_id = None
        with client.stream("GET", f"/v1/runs/{run_id}/events/stream", timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            worker = threading.Thread(target=drive, args=(cdp_url, pages.url))
            worker.start()
            for event, ident, data in sse_frames(response):
                if event == "heartbeat":
                    continue  # idle while the driving thread starts
                assert event == "run.event"
                seen.append(data)
                last_id = ident
                if len(seen) >= 12:
                    break  # hang up mid-run
        worker.join()
        # Resume from the last id received: the rest of the run, nothing twice, nothing missing.
        done = threading.Event()

        def stop_later():
            time.sleep(1.0)
            client.post(f"/v1/runtimes/{runtime_id}/stop")
            done.set()

        threading.Thread(target=stop_later).start()
        ended = None
        with client.stream(
            "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": last_id}, timeout=30
        ) as response:
            for event, _ident, data in sse_frames(response):
                if event == "run.ended":
                    ended = data
                    break
                if event == "run.event":
                    seen.append(data)
        done.wait(10)
        assert ended == {"runId": run_id, "status": "completed", "finishedAt": ended["finishedAt"], "failure": None}
        stored = events_of(client, run_id, limit=200)
        stored_all = stored
        cursor = None
        while True:
            page = client.get(
                f"/v1/runs/{run_id}/events", params={"limit": 200, **({"cursor": cursor} if cursor else {})}
            ).json()
            if cursor is None:
                stored_all = []
            stored_all += page["data"]
            cursor = page["nextCursor"]
            if not cursor:
                break
        assert [e["seq"] for e in seen] == [e["seq"] for e in stored_all]
        assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))


def test_event_written_by_one_process_is_streamed_by_the_other(tmp_path, pages):
    with cluster(tmp_path, count=2) as (a, b), a.client() as ca, b.client() as cb:
        started = ca.post("/v1/runtimes", json={"start": True}).json()  # A launches and observes
        run_id = started["activeRunId"]
        with cb.stream("GET", f"/v1/runs/{run_id}/events/stream", params={"type": "page.load"}, timeout=30) as response:
            frames = sse_frames(response)
            threading.Thread(target=drive, args=(started["connection"]["cdpUrl"], pages.url, 1)).start()
            t0 = time.monotonic()
            for event, _ident, data in frames:
                if event == "run.event" and data["data"].get("url", "").endswith("one.html"):
                    break
            delay = time.monotonic() - t0
        assert data["type"] == "page.load" and delay < 10
        ca.post(f"/v1/runtimes/{started['id']}/stop")


def test_wait_returns_the_next_matching_event_or_times_out(live, pages, stop_afterwards):
    with live.client() as client:
        started = client.post("/v1/runtimes", json={"start": True}).json()
        stop_afterwards(started["id"])
        run_id = started["activeRunId"]
        empty = client.post(f"/v1/runs/{run_id}/events/wait", json={"type": ["page.load"], "timeoutMs": 300}).json()
        assert empty["timedOut"] is True and empty["event"] is None and empty["cursor"]
        threading.Timer(0.5, drive, args=(started["connection"]["cdpUrl"], pages.url, 1)).start()
        got = client.post(
            f"/v1/runs/{run_id}/events/wait",
            json={"type": ["page.load"], "cursor": empty["cursor"], "timeoutMs": 20000},
        ).json()
        assert got["timedOut"] is False and got["event"]["type"] == "page.load"
        # Over the maximum is clamped and says so (the page.load after that cursor answers at once); negative is 400.
        clamped = client.post(
            f"/v1/runs/{run_id}/events/wait",
            json={"type": ["page.load"], "cursor": empty["cursor"], "timeoutMs": 999999},
        )
        assert clamped.status_code == 200 and clamped.json()["timeoutClamped"] is True, clamped.text
        bad = client.post(f"/v1/runs/{run_id}/events/wait", json={"timeoutMs": -1})
        assert bad.status_code == 400 and bad.json()["details"]["fields"][0]["field"] == "timeoutMs", bad.text


def test_activity_and_commands_describe_the_run(live, runtime, pages):
    with live.client() as client:
        connection = lease(client, runtime).json()
        # Linger: closing the page at once would cancel one.html's failing fetch before it fails.
        drive(connection["endpoint"]["url"], pages.url, 1, linger_ms=500)
        run_id = runtime["activeRunId"]
        wait_for(lambda: any(e["type"] == "page.error" for e in events_of(client, run_id)), timeout=10)
        wait_for(lambda: any(e["type"] == "network.failed" for e in events_of(client, run_id)), timeout=10)
        items = client.get(f"/v1/runs/{run_id}/activity", params={"limit": 200}).json()["data"]
        navigation = next(i for i in items if i["message"].endswith("/one.html"))
        assert navigation["category"] == "browser" and navigation["status"] == "loaded"
        urls = [c["data"]["url"] for c in navigation["children"]]
        assert f"{pages.url}/one.html" in urls and "http://127.0.0.1:9/missing.json" in urls
        assert navigation["failedRequests"] >= 1 and navigation["severity"] == "warning"
        assert all(c["parentId"] == navigation["id"] for c in navigation["children"])
        errors = client.get(f"/v1/runs/{run_id}/activity", params={"level": "error"}).json()["data"]
        assert {i["severity"] for i in errors} == {"error"}
        assert any(i["message"] == "something went wrong" for i in errors)
        assert any("boom from page one" in i["message"] for i in errors)
        console = client.get(f"/v1/runs/{run_id}/activity", params={"categories": "console"}).json()["data"]
        assert {i["category"] for i in console} == {"console"} and len(console) >= 4
        assert client.get(f"/v1/runs/{run_id}/activity", params={"level": "fatal"}).status_code == 400

        client.delete(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections/{connection['id']}")
        commands = client.get(f"/v1/runs/{run_id}/commands").json()["data"]
        assert [c["entryCall"] for c in commands] == ["runtime.start", "connection.create", "connection.revoke"]
        assert all(c["status"] == "succeeded" and "request" not in c for c in commands)
        detailed = client.get(
            f"/v1/runs/{run_id}/commands", params=[("include", "request"), ("include", "result"), ("order", "desc")]
        ).json()
        assert detailed["commands"][0]["entryCall"] == "connection.revoke"
        assert detailed["data"][1]["request"] == {"protocol": "cdp", "ttlSeconds": 600, "scope": "lease"}
        assert detailed["data"][1]["result"]["connectionId"] == connection["id"]


def test_idle_stream_heartbeats_and_a_crash_ends_it_with_run_ended_failed(live):
    import os
    import signal
    from pathlib import Path

    from tests.support import chromium_pids, profile_fragment

    with live.client() as client:
        started = client.post("/v1/runtimes", json={"start": True}).json()
        run_id, runtime_id = started["activeRunId"], started["id"]
        frames = []
        with client.stream("GET", f"/v1/runs/{run_id}/events/stream", timeout=30) as response:
            stream = sse_frames(response)
            for event, _ident, data in stream:
                frames.append((event, data))
                if event == "heartbeat":
                    break
            before_crash = [d["seq"] for e, d in frames if e == "run.event"]
            main = [
                pid
                for pid in chromium_pids(profile_fragment(live.data_dir, runtime_id))
                if b"--type=" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            os.kill(main[0], signal.SIGKILL)
            for event, _ident, data in stream:
                frames.append((event, data))
                if event == "run.ended":
                    break
        ended = frames[-1]
        assert ended[0] == "run.ended" and ended[1]["status"] == "failed"
        assert ended[1]["failure"]["code"] == "runtime.browser_exited"
        streamed = [d for e, d in frames if e == "run.event"]
        assert streamed[-1]["type"] in ("runtime.failed", "connection.detached") or any(
            d["type"] == "runtime.failed" for d in streamed
        )
        # Everything up to the crash is kept, and the stream showed all of it.
        stored = events_of(client, run_id)
        assert [d["seq"] for d in streamed] == [e["seq"] for e in stored]
        assert before_crash == [e["seq"] for e in stored][: len(before_crash)]

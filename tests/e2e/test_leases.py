"""Lease lifecycles that need their own server processes: contention across two processes sharing
PostgreSQL and Redis, expiry of short leases, clients that vanish, browsers that die, server crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import cluster, create_db, drop_db, lease, start_server, stop_server
from tests.e2e.test_cdp import _closed_yet, events_of, refusal, wait_for
from tests.support import chromium_pids, profile_fragment


def _new_runtime(client: httpx.Client) -> dict:
    space = client.post("/v1/spaces", json={"name": "leases"}).json()
    runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
    assert runtime["status"] == "active", runtime
    return runtime


def test_200_concurrent_leases_across_two_processes_yield_one(tmp_path):
    with cluster(tmp_path, count=2) as (a, b):
        with a.client() as client:
            runtime = _new_runtime(client)
        path = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections"

        async def attempt_all() -> list[httpx.Response]:
            headers = {"Authorization": f"Bearer {a.api_key}"}
            limits = httpx.Limits(max_connections=100)
            async with (
                httpx.AsyncClient(base_url=a.url, headers=headers, timeout=60, limits=limits) as ca,
                httpx.AsyncClient(base_url=b.url, headers=headers, timeout=60, limits=limits) as cb,
            ):
                calls = [(ca if i % 2 else cb).post(path, json={"protocol": "cdp"}) for i in range(200)]
                return await asyncio.gather(*calls)

        responses = asyncio.run(attempt_all())
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == 1 and statuses.count(409) == 199, (
            sorted(set(statuses)),
            [r.text for r in responses if r.status_code >= 500][:2],
            [line for server in (a, b) for line in server.log().splitlines() if "error" in line.lower()][:6],
        )
        winner = next(r.json() for r in responses if r.status_code == 201)
        holders = {
            (h["kind"], h["id"]) for r in responses if r.status_code == 409 for h in [r.json()["details"]["holder"]]
        }
        assert holders == {("connection", winner["id"])}

        with b.client() as client:
            listed = client.get(path).json()["data"]
            assert [c["id"] for c in listed] == [winner["id"]]
            # The lease taken through one process is usable through the other.
            other_url = (
                winner["endpoint"]["url"]
                .replace(a.url.split("//")[1], b.url.split("//")[1])
                .replace(b.url.split("//")[1], b.url.split("//")[1])
            )
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(other_url)
                assert browser.contexts[0].new_page().evaluate("1 + 1") == 2
                browser.close()
            client.delete(f"{path}/{winner['id']}")
            assert client.post(path, json={"protocol": "cdp"}).status_code == 201
            client.post(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/stop")


def test_short_lease_expires_closes_its_socket_and_frees_the_lock(tmp_path, pages):
    with cluster(tmp_path, BCTRL_MIN_LEASE_TTL_SECONDS="1") as (server,):
        with server.client() as client:
            runtime = _new_runtime(client)
            # Long enough for a loaded host to connect and load a page inside it (3 s was not, in CI).
            connection = lease(client, runtime, ttl=10).json()
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(connection["endpoint"]["url"])
                page = browser.contexts[0].new_page()
                page.goto(f"{pages.url}/index.html")
                wait_for(lambda: _closed_yet(page), timeout=30)
            detached = wait_for(lambda: events_of(client, runtime["activeRunId"], type="connection.detached"))
            assert detached[-1]["data"]["code"] == 1000 and detached[-1]["data"]["reason"] == "lease expired"
            base = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections"
            # The reaper expires it without any request touching the lease.
            expired = wait_for(lambda: events_of(client, runtime["activeRunId"], type="connection.expired"))
            assert expired[0]["connectionId"] == connection["id"]
            assert client.get(f"{base}/{connection['id']}").json()["status"] == "expired"
            status, body = refusal(connection["endpoint"]["url"])
            assert status == 409 and body["code"] == "connection.expired"
            assert lease(client, runtime).status_code == 201
            client.post(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/stop")


def test_vanished_client_is_recorded_as_detached(live, stop_afterwards):
    with live.client() as client:
        runtime = _new_runtime(client)
        stop_afterwards(runtime["id"])
        url = lease(client, runtime).json()["endpoint"]["url"]
        script = textwrap.dedent(f"""
            import time
            from websockets.sync.client import connect
            sock = connect({url!r})
            sock.send('{{"id":1,"method":"Browser.getVersion"}}')
            sock.recv(timeout=10)
            print("attached", flush=True)
            time.sleep(60)
        """)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "attached"
        child.kill()  # no close frame: the process just disappears
        child.wait()
        detached = wait_for(lambda: events_of(client, runtime["activeRunId"], type="connection.detached"))
        assert detached[0]["data"]["endedBy"] == "client" and detached[0]["data"]["code"] != 1000
        commands = wait_for(lambda: events_of(client, runtime["activeRunId"], type="connection.command"))
        assert commands[0]["data"]["methods"][0]["method"] == "Browser.getVersion"


def test_browser_death_closes_the_socket_and_fails_the_run(live):
    with live.client() as client:
        runtime = _new_runtime(client)
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            main = [
                pid
                for pid in chromium_pids(profile_fragment(live.data_dir, runtime["id"]))
                if b"--type=" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            os.kill(main[0], signal.SIGKILL)
            wait_for(lambda: _closed_yet(page), timeout=10)
        run = wait_for(
            lambda: (r := client.get(f"/v1/runs/{runtime['activeRunId']}").json())["status"] == "failed" and r
        )
        assert run["failure"]["code"] == "runtime.browser_exited"
        detached = wait_for(lambda: events_of(client, run["id"], type="connection.detached"))
        assert detached[0]["data"]["endedBy"] in ("browser", "server")


def test_server_crash_adopts_browsers_and_restores_the_lock(tmp_path):
    """SIGKILL the only server while a runtime is leased; a new process adopts the browser, keeps the
    lease's lock, and serves the lease."""
    # The in-process lock (no Redis), so the lock itself must come back from the database.
    url = create_db()
    data_dir = tmp_path / "crash"
    key = "bctrl_crash_key"
    server = start_server(data_dir, url, key, "unused", BCTRL_REDIS_URL="")
    try:
        with server.client() as client:
            runtime = _new_runtime(client)
            connection = lease(client, runtime).json()
        stop_server(server, signal.SIGKILL)
        assert chromium_pids(profile_fragment(data_dir, runtime["id"])), "the browser outlived the crash"
        port = int(server.url.rsplit(":", 1)[1])
        server = start_server(data_dir, url, key, "unused", port=port, BCTRL_REDIS_URL="")
        with server.client() as client:
            assert client.get(f"/v1/runtimes/{runtime['id']}").json()["status"] == "active"
            busy = lease(client, runtime)
            assert busy.status_code == 409 and busy.json()["details"]["holder"]["id"] == connection["id"]
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(connection["endpoint"]["url"])
                assert browser.contexts[0].new_page().evaluate("2 * 21") == 42
                browser.close()
            time.sleep(0.2)
            client.post(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/stop")
        assert chromium_pids(profile_fragment(data_dir, runtime["id"])) == []
    finally:
        stop_server(server)
        assert chromium_pids(profile_fragment(data_dir)) == []
        drop_db(url)

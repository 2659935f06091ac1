"""A server SIGKILLed with a socket attached: the next server's sweep detaches that socket, so the
runtime's idle timeout still stops it."""

from __future__ import annotations

import signal
import time

from playwright.sync_api import sync_playwright

from tests.e2e.conftest import start_server, stop_server
from tests.faults.conftest import wait_until


def _events(client, run_id: str, type_: str) -> list[dict]:
    body = client.get(f"/v1/runs/{run_id}/events", params={"type": type_, "limit": 100}).json()
    return [e for e in body["data"] if e["type"] == type_]


def test_sigkill_with_an_attached_socket_is_detached_by_the_next_sweep(private_pg, private_redis, fault_server):
    database_url = private_pg.create_database()
    first = fault_server(database_url=database_url)
    second = None
    with first.client() as api:
        # The flat run connection: the case where a counted dead socket also kept it from yielding.
        runtime = api.post("/v1/runtimes", json={"start": True, "idleTimeoutSeconds": 60}).json()
        run_id = runtime["connection"]["runId"]
        lease = {"id": runtime["connection"]["id"], "endpoint": {"url": runtime["connection"]["cdpUrl"]}}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(lease["endpoint"]["url"])
            assert browser.contexts[0].new_page().evaluate("6 * 7") == 42
            with first.client() as api:
                wait_until(lambda: _events(api, run_id, "connection.attached"), 10)
            stop_server(first, signal.SIGKILL)  # no detach is ever written by it
            killed = time.monotonic()
        second = start_server(first.data_dir, database_url, first.api_key, "unused", BCTRL_REDIS_URL=private_redis.url)
        with second.client() as api:
            detached, _ = wait_until(
                lambda: [
                    e for e in _events(api, run_id, "connection.detached") if e["data"].get("reason") == "server_died"
                ],
                30,
            )
            detached_after = time.monotonic() - killed
            assert len(detached) == 1 and detached[0]["connectionId"] == lease["id"]
            # With no socket counted, the idle timeout (60 s) stops the runtime.
            stopped, _ = wait_until(lambda: api.get(f"/v1/runs/{run_id}").json()["status"] != "active" or None, 120)
            stopped_after = time.monotonic() - killed
            got = api.get(f"/v1/runtimes/{runtime['id']}").json()
            assert got["status"] == "stopped", got
            print(
                f"\nFAULT sigkill-with-attached-socket: detach written {detached_after:.1f} s after the kill; "
                f"idle stop {stopped_after:.1f} s after the kill (idleTimeoutSeconds 60)"
            )
    finally:
        if second is not None:
            with second.client() as api:
                api.post(f"/v1/runtimes/{runtime['id']}/stop")
            stop_server(second)

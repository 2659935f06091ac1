"""The controller lock across a Redis restart: the database is the truth of who holds a runtime."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import sync_playwright


def _leases(runtime: dict) -> str:
    return f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections"


def test_redis_restart_with_an_attached_lease_keeps_one_controller(private_redis, fault_server):
    server = fault_server()
    with server.client() as api, sync_playwright() as pw:
        space = api.post("/v1/spaces", json={"name": "lock-fault"}).json()
        runtime = api.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        try:
            first = api.post(_leases(runtime), json={"protocol": "cdp", "ttlSeconds": 600}).json()
            browser = pw.chromium.connect_over_cdp(first["endpoint"]["url"])
            page = (
                browser.contexts[0].pages[0]
                if browser.contexts and browser.contexts[0].pages
                else browser.new_context().new_page()
            )
            assert page.evaluate("1 + 1") == 2

            started = time.monotonic()
            private_redis.restart()  # every key gone
            second = api.post(_leases(runtime), json={"protocol": "cdp", "ttlSeconds": 600})
            took = time.monotonic() - started
            assert second.status_code == 409, second.text
            assert second.json()["code"] == "runtime.controller_busy"
            assert second.json()["details"]["holder"].items() >= {"kind": "connection", "id": first["id"]}.items()
            # The first socket keeps driving the browser.
            assert [page.evaluate(f"{i} * 2") for i in range(30)] == [i * 2 for i in range(30)]

            assert api.delete(f"{_leases(runtime)}/{first['id']}").status_code == 200
            third = api.post(_leases(runtime), json={"protocol": "cdp", "ttlSeconds": 600})
            assert third.status_code == 201, third.text
            # The revoked lease's URL is refused now that another lease holds the runtime.
            refused = httpx.get(first["endpoint"]["httpUrl"].replace("?token=", "/json/version?token="))
            assert refused.status_code == 409 and refused.json()["code"] == "connection.revoked", refused.text
            browser.close()
            print(
                f"\nFAULT redis-restart-with-attached-lease: second lease 409 in {took * 1000:.0f} ms after restart; "
                "first socket 30/30 commands; revoke then new lease 201"
            )
        finally:
            api.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

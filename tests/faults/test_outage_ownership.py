"""PostgreSQL goes away for longer than the ownership lease while two replicas share it: when it comes
back every lease looks run out for a moment, and no replica takes the other's runs for that
(app/runtimes/ownership.py: a replica judges others only once its own lease has held for a whole lease)."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import lease
from tests.e2e.test_cdp import events_of
from tests.faults.conftest import wait_until

LEASE_SECONDS = 4


def test_a_database_outage_moves_no_run(private_pg, fault_server):
    database = private_pg.create_database()
    env = {"BCTRL_OWNERSHIP_LEASE_SECONDS": str(LEASE_SECONDS)}
    a = fault_server(database_url=database, **env)
    b = fault_server(database_url=database, **env)  # the other replica, which must not take a's run
    # Requests to a (which launches, so owns, the browser) with the key the last server started with.
    with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {b.api_key}"}, timeout=60) as client:
        space = client.post("/v1/spaces", json={"name": "outage-ownership"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert runtime["status"] == "active", runtime
        run_id = runtime["activeRunId"]
        time.sleep(LEASE_SECONDS + 2)  # both replicas have held their leases long enough to judge

        private_pg.stop("fast")
        time.sleep(LEASE_SECONDS * 2.5)  # every lease runs out meanwhile
        private_pg.start()
        wait_until(lambda: client.get(f"/v1/runtimes/{runtime['id']}").status_code == 200, 30)
        time.sleep(LEASE_SECONDS * 2)  # a takeover would have happened by now

        assert events_of(client, run_id, type="runtime.adopted") == []
        assert client.get(f"/v1/runtimes/{runtime['id']}").json()["status"] == "active"
        # Still observed, once: its owner follows it again.
        connection = lease(client, runtime).json()
        url = "data:text/html,<title>after the outage</title>"
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(connection["endpoint"]["url"])
            page = browser.contexts[0].new_page()
            page.wait_for_timeout(1000)  # the adopter's observer may still be setting up (see test_ownership)
            page.goto(url)

            def navigated() -> int:
                found = events_of(client, run_id, type="page.navigated")
                return sum(1 for e in found if e["data"]["url"] == url)

            wait_until(lambda: navigated() >= 1, 15)
            time.sleep(1.5)
            assert navigated() == 1
            browser.close()
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

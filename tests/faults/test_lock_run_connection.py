"""The flat run connection's lock: kept across a Redis restart, lent to a live input viewer while no
client is attached, and given back when that viewer is gone."""

from __future__ import annotations

import httpx

from tests.faults.conftest import wait_until


def _version(cdp_url: str) -> httpx.Response:
    http = cdp_url.replace("ws://", "http://", 1).replace("?token=", "/json/version?token=")
    return httpx.get(http, timeout=10)


def test_run_connection_keeps_its_lock_and_gets_it_back(private_redis, fault_server):
    server = fault_server()
    with server.client() as api:
        runtime = api.post("/v1/runtimes", json={"start": True}).json()
        try:
            cdp_url, run_id = runtime["connection"]["cdpUrl"], runtime["connection"]["runId"]
            assert _version(cdp_url).status_code == 200
            private_redis.restart()
            assert _version(cdp_url).status_code == 200, "the run connection lost its lock to a Redis restart"
            # A foreign lease never takes it, not even right after the restart.
            seed = api.get(f"/v1/runtimes/{runtime['id']}").json()
            lease = api.post(
                f"/v1/spaces/{seed['spaceId']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"}
            )
            assert lease.status_code == 409 and lease.json()["code"] == "runtime.controller_busy", lease.text
            # It yields to an input viewer (no client attached) ...
            minted = api.post(f"/v1/runs/{run_id}/live", json={"control": "input"})
            assert minted.status_code in (200, 201), minted.text
            busy = _version(cdp_url)
            assert busy.status_code == 409 and busy.json()["details"]["holder"]["kind"] == "live_view", busy.text
            # ... and gets the runtime back once that viewer is revoked (its reaper retakes it).
            assert api.delete(f"/v1/runs/{run_id}/viewers/{minted.json()['viewerId']}").status_code == 200
            back, seconds = wait_until(lambda: _version(cdp_url).status_code == 200 or None, 30)
            print(f"\nrun connection took its lock back {seconds:.1f} s after the viewer was revoked")
        finally:
            api.post(f"/v1/runtimes/{runtime['id']}/stop")

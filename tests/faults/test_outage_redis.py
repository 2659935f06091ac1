"""Redis goes away with leases in play and comes back. Redis is only the fast path of the controller
lock and of event wake-ups (the database decides who controls a runtime), so each call either works
or is refused with 503 and a `*.unavailable` code and Retry-After, never a 500; nothing is
half-created, no lock is left held, two controllers never run at once, and once Redis is back
everything works again without a restart."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import lease
from tests.faults.conftest import wait_until
from tests.faults.outage import refusal, ws_attempt


def _ok_or_unavailable(label: str, answer: dict, ok: int) -> bool:
    """True for `ok`, False for a coded 503 with Retry-After; anything else fails the test."""
    if answer["status"] == ok:
        return True
    assert answer["status"] == 503 and str(answer["code"]).endswith(".unavailable") and answer["retryAfter"], (
        label,
        answer,
    )
    return False


def test_redis_down_and_back(private_redis, fault_server):
    server = fault_server()
    with server.client() as client:
        space = client.post("/v1/spaces", json={"name": "redis-outage"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert runtime["status"] == "active", runtime
        connections = f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections"
        run_id = runtime["activeRunId"]
        seen: dict[str, dict] = {}

        private_redis.stop()
        created = refusal(first := lease(client, runtime))
        seen["lease create"] = created
        if _ok_or_unavailable("lease create", created, 201):
            connection = first.json()
            base, query = connection["endpoint"]["httpUrl"].split("?", 1)
            # The lease holds the runtime even with Redis gone: no second controller.
            second = refusal(lease(client, runtime))
            seen["second lease (held)"] = second
            if second["status"] != 503:
                assert (second["status"], second["code"]) == (409, "runtime.controller_busy"), second
            live_busy = refusal(client.post(f"/v1/runs/{run_id}/live", json={"control": "input"}))
            seen["live input while leased"] = live_busy
            if live_busy["status"] != 503:
                assert (live_busy["status"], live_busy["code"]) == (409, "runtime.controller_busy"), live_busy
            seen["attach"] = ws_attempt(connection["endpoint"]["url"])
            _ok_or_unavailable("attach", seen["attach"], 101)
            seen["/json/version"] = refusal(client.get(f"{base}/json/version?{query}"))
            _ok_or_unavailable("/json/version", seen["/json/version"], 200)
            seen["revoke"] = refusal(client.delete(f"{connections}/{connection['id']}"))
            if _ok_or_unavailable("revoke", seen["revoke"], 200):
                # A revoke that said 200 did revoke: the token no longer opens a socket.
                assert client.get(f"{connections}/{connection['id']}").json()["status"] == "revoked"
                assert ws_attempt(connection["endpoint"]["url"])["status"] in (401, 403, 404, 409, 410)
        else:
            # Refused: nothing half-created.
            assert [c for c in client.get(connections).json()["data"] if c["status"] == "active"] == []
        mint = refusal(
            live := client.post(f"/v1/runs/{run_id}/live", json={"control": "input", "expiresInSeconds": 60})
        )
        seen["live input mint"] = mint
        _ok_or_unavailable("live input mint", mint, 200)
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["lock"], ready.text
        assert ready.headers["retry-after"]
        print(f"\nRedis down: {seen}")

        private_redis.start()
        back = time.monotonic()
        # Whatever the outage left (an input link minted, a lease not revoked), it can be let go of.
        if mint["status"] == 200:
            assert client.delete(f"/v1/runs/{run_id}/viewers/{live.json()['viewerId']}").status_code == 200
        for c in client.get(connections).json()["data"]:
            if c["status"] == "active":
                assert client.delete(f"{connections}/{c['id']}").status_code == 200
        # Then no lock is held: a new lease is granted and works end to end.
        taken, seconds = wait_until(lambda: (r := lease(client, runtime)).status_code == 201 and r, 15)
        connection = taken.json()
        base, query = connection["endpoint"]["httpUrl"].split("?", 1)
        assert ws_attempt(connection["endpoint"]["url"])["status"] == 101
        assert client.get(f"{base}/json/version?{query}").status_code == 200
        assert client.delete(f"{connections}/{connection['id']}").status_code == 200
        minted = client.post(f"/v1/runs/{run_id}/live", json={"control": "input", "expiresInSeconds": 60})
        assert minted.status_code == 200, minted.text
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, 10)
        print(f"Redis back: first lease 201 after {seconds:.3f}s, all fine after {time.monotonic() - back:.3f}s")
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")


def test_hung_redis_does_not_hang_requests(private_redis, fault_server):
    """Redis that accepts connections but answers nothing (SIGSTOP): calls end within the client's
    timeouts, with an answer (2xx or a coded 503), and all is well once it answers again."""
    server = fault_server()
    with server.client() as client:
        space = client.post("/v1/spaces", json={"name": "redis-hung"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        connections = f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections"
        private_redis.pause()
        try:
            started = time.monotonic()
            created = refusal(first := lease(client, runtime))
            took = time.monotonic() - started
            print(f"\nhung Redis: lease create {created} in {took:.2f}s")
            if _ok_or_unavailable("lease create", created, 201):
                revoked = refusal(client.delete(f"{connections}/{first.json()['id']}"))
                print(f"hung Redis: revoke {revoked}")
                _ok_or_unavailable("revoke", revoked, 200)
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert ready.status_code == 503 and ready.json()["unavailable"] == ["lock"], ready.text
        finally:
            private_redis.resume()
        for c in client.get(connections).json()["data"]:
            if c["status"] == "active":
                assert client.delete(f"{connections}/{c['id']}").status_code == 200
        taken, seconds = wait_until(lambda: (r := lease(client, runtime)).status_code == 201 and r, 15)
        assert client.delete(f"{connections}/{taken.json()['id']}").status_code == 200
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

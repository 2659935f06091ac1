"""PostgreSQL goes away under traffic and comes back: every answer meanwhile is 503
`database.unavailable` with Retry-After (none is a 500, none hangs), CDP attach and discovery are
refused the same way, an open SSE stream ends with a frame that says why, /readyz names the
database; once PostgreSQL is back, the server serves again by itself."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import lease
from tests.faults.conftest import first_2xx_after, wait_until
from tests.faults.outage import StreamReader, sweep, ws_attempt

OUTAGE_SECONDS = 3.0
RECOVERY_LIMIT_SECONDS = 15.0


@pytest.mark.parametrize(
    "mode,splice", [("fast", True), ("immediate", True), ("fast", False)], ids=["fast-stop", "crash", "asgi-relay"]
)
def test_postgres_restart_under_traffic(private_pg, fault_server, mode, splice):
    """mode: how PostgreSQL stops (`immediate` is a crash); splice: the CDP path (TCP splice or ASGI relay)."""
    server = fault_server(BCTRL_SSE_HEARTBEAT_SECONDS="1", BCTRL_CDP_SPLICE=str(splice).lower())
    with server.client() as client:
        space = client.post("/v1/spaces", json={"name": "pg-outage"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert runtime["status"] == "active", runtime
        run_id = runtime["activeRunId"]
        connection = lease(client, runtime).json()
        ws_url, http_url = connection["endpoint"]["url"], connection["endpoint"]["httpUrl"]
        base, query = http_url.split("?", 1)
        calls = [
            ("GET", "/v1/spaces", {}),
            ("GET", f"/v1/spaces/{space['id']}", {}),
            ("POST", "/v1/spaces", {"json": {"name": "during"}}),
            ("GET", f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}", {}),
            ("GET", f"/v1/runs/{run_id}/events", {}),
            ("GET", f"{base}/json/version?{query}", {}),
        ]
        assert all(a["status"] < 300 for _, a in sweep(client, calls, 0, max_rounds=1))
        stream = StreamReader(client, f"/v1/runs/{run_id}/events/stream")
        assert stream.opened.wait(10) and stream.error is None
        wait_until(lambda: stream.last("run.event"), 10)

        private_pg.stop(mode)
        answers = sweep(client, calls, OUTAGE_SECONDS)
        bad = [
            (call, a)
            for call, a in answers
            if (a["status"], a["code"]) != (503, "database.unavailable") or not a["retryAfter"]
        ]
        assert answers and not bad, bad[:5]
        # The CDP socket is refused like the REST API refuses, before the upgrade.
        assert ws_attempt(ws_url) == {"status": 503, "code": "database.unavailable", "retryAfter": "2"}
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["unavailable"] == ["database"], ready.text
        assert ready.headers["retry-after"]
        # The open stream ended with a frame saying why, and when to come back.
        assert stream.closed.wait(10), stream.frames[-3:]
        final = stream.frames[-1]
        assert final[0] == "error" and final[2]["code"] == "database.unavailable" and final[2]["retryAfter"], final

        private_pg.start()
        back = time.monotonic()
        seconds, before = first_2xx_after(client, "GET", "/v1/spaces", timeout=RECOVERY_LIMIT_SECONDS)
        print(
            f"\nPostgreSQL {mode} stop: {len(answers)} calls in {OUTAGE_SECONDS}s all 503 "
            f"database.unavailable; first 2xx {seconds:.3f}s after PostgreSQL was back ({before})"
        )
        assert all(a["status"] < 300 for _, a in sweep(client, calls, 0, max_rounds=1))
        assert ws_attempt(ws_url)["status"] == 101
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, 10)
        print(f"all calls, CDP attach and /readyz fine {time.monotonic() - back:.3f}s after")
        # The browser outlived the outage: a short database outage is not a browser failure.
        rt = client.get(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}").json()
        assert rt["status"] == "active" and rt["activeRunId"] == run_id, rt
        # The stream resumes where it ended.
        last_id = next(ident for _, ident, _ in reversed(stream.frames) if ident)
        resumed = StreamReader(client, f"/v1/runs/{run_id}/events/stream?cursor={last_id}")
        assert resumed.opened.wait(10) and resumed.error is None
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
        assert resumed.closed.wait(15)
        assert resumed.frames[-1][0] == "run.ended", resumed.frames[-3:]
        # Resumed without a gap or a repeat: the first event after the cursor follows the last one seen.
        seqs = [data["seq"] for name, _, data in stream.frames + resumed.frames if name == "run.event"]
        assert seqs == list(range(1, len(seqs) + 1)), seqs

"""A server process dies mid-invocation: the next process fails that invocation (no heartbeat), frees
the runtime's lock, adopts the browser, and runs the next invocation on it."""

from __future__ import annotations

import signal
import time
import uuid

from tests.e2e.conftest import create_db, drop_db, start_server, stop_server
from tests.invocations.test_invocations import PAGES
from tests.support import PageServer


def test_restart_fails_the_orphaned_invocation_and_serves_the_next(tmp_path, llm):
    pages = PageServer(PAGES)
    database, key, prefix = create_db(), f"bctrl_e2e_{uuid.uuid4().hex}", f"bctrl-test-{uuid.uuid4().hex[:8]}"
    env = {"BCTRL_INVOCATION_DEAD_AFTER_SECONDS": "3"}
    servers = []
    try:
        first = start_server(tmp_path / "first", database, key, prefix, **env)
        servers.append(first)
        with first.client() as client:
            client.post(
                "/v1/ai-connections",
                json={
                    "label": "stand-in",
                    "provider": "openai-compatible",
                    "baseUrl": f"{llm.base}/v1",
                    "apiKey": "sk-test",
                    "defaultModel": "m",
                },
            ).raise_for_status()
            runtime = client.post("/v1/runtimes", json={"start": True, "recording": False}).json()
            llm.then({"delay": 20, "tool": "no_match", "args": {"reason": "too late"}})
            orphan = client.post(
                f"/v1/runtimes/{runtime['id']}/invocations", json={"action": "act", "instruction": "x"}
            ).json()
            deadline = time.monotonic() + 15
            while client.get(f"/v1/invocations/{orphan['id']}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
        stop_server(first, signal.SIGKILL)

        second = start_server(tmp_path / "second", database, key, prefix, **env)
        servers.append(second)
        with second.client() as client:
            deadline = time.monotonic() + 20
            while (after := client.get(f"/v1/invocations/{orphan['id']}").json())["status"] == "running":
                assert time.monotonic() < deadline, after
                time.sleep(0.2)
            assert after["status"] == "failed" and "stopped" in after["error"]["message"]
            # The lock is free again and the adopted browser takes the next invocation.
            llm.reset()
            llm.then({"tool": "no_match", "args": {"reason": "nothing to press"}})
            nxt = client.post(f"/v1/runtimes/{runtime['id']}/invocations", json={"action": "act", "instruction": "y"})
            assert nxt.status_code == 202, nxt.text
            done = client.post(f"/v1/invocations/{nxt.json()['id']}/wait", json={"timeoutMs": 30_000}).json()
            assert done["invocation"]["status"] == "succeeded", done
            client.post(f"/v1/runtimes/{runtime['id']}/stop")
    finally:
        for server in servers:
            stop_server(server)
        drop_db(database)
        pages.close()

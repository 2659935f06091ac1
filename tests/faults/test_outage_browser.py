"""A runtime's Chromium is killed (kill -9) while a lease's socket is attached: the run fails with
`runtime.browser_exited`, the socket closes, and the runtime's capacity is free again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.e2e.conftest import lease
from tests.faults.conftest import wait_until
from tests.support import chromium_pids, profile_fragment


def _main_pid(data_dir: Path, runtime_id: str) -> int:
    for pid in chromium_pids(profile_fragment(data_dir, runtime_id)):
        if b"--type=" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no browser process")


def test_browser_kill_fails_the_run_closes_the_socket_and_frees_capacity(fault_server):
    server = fault_server(BCTRL_MAX_RUNTIMES="1")
    with server.client() as client:
        space = client.post("/v1/spaces", json={"name": "browser-kill"}).json()
        runtimes = f"/v1/spaces/{space['id']}/runtimes"
        runtime = client.post(runtimes, json={}).json()
        assert runtime["status"] == "active", runtime
        # The one slot is taken: a second browser is refused for capacity.
        full = client.post(runtimes, json={})
        assert full.status_code == 429 and full.json()["code"] == "runtime.capacity_exhausted", full.text
        connection = lease(client, runtime).json()
        with ws_connect(connection["endpoint"]["url"], open_timeout=10, max_size=None) as sock:
            sock.send('{"id":1,"method":"Browser.getVersion"}')
            assert '"id":1' in sock.recv(timeout=10)
            os.kill(_main_pid(server.data_dir, runtime["id"]), signal.SIGKILL)
            killed = time.monotonic()
            try:
                while True:
                    sock.recv(timeout=10)
            except ConnectionClosed:
                closed_after = time.monotonic() - killed
            except TimeoutError:
                raise AssertionError("the lease's socket stayed open after the browser died") from None
        run, failed_after = wait_until(
            lambda: (r := client.get(f"/v1/runs/{runtime['activeRunId']}").json())["status"] == "failed" and r, 10
        )
        assert run["failure"]["code"] == "runtime.browser_exited", run
        rt = client.get(f"{runtimes}/{runtime['id']}").json()
        assert rt["failure"]["code"] == "runtime.browser_exited" and rt["activeRunId"] is None, rt
        assert client.get(f"{runtimes}/{runtime['id']}/connections/{connection['id']}").json()["status"] != "active"
        wait_until(lambda: chromium_pids(profile_fragment(server.data_dir, runtime["id"])) == [], 10)
        # Capacity is free: another browser starts.
        other, freed_after = wait_until(lambda: (r := client.post(runtimes, json={})).status_code == 201 and r, 15)
        assert other.json()["status"] == "active", other.text
        print(
            f"\nbrowser kill: socket closed {closed_after:.3f}s, run failed {failed_after + closed_after:.3f}s "
            f"after kill -9; capacity free again {freed_after:.3f}s after that"
        )
        client.post(f"{runtimes}/{other.json()['id']}/stop")

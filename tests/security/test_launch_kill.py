"""Issue 11 item 3: a server SIGKILLed while a browser is starting leaves no Chromium behind: the next
server's first sweep finds the browser (its profile is in this deployment's browser root, recorded
before the process started), ends it and fails the runtime."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.e2e.conftest import start_server, stop_server
from tests.support import chromium_pids, profile_fragment

SLOW_DIR = Path("/usr/local/lib/bctrl-tests")  # executable by browser uids (a pytest tmp dir is not)


def _profile_of(pid: int) -> str:
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    return next(a for a in cmdline if a.startswith(b"--user-data-dir=")).split(b"=", 1)[1].decode()


def test_a_browser_launched_by_a_killed_server_is_ended_by_the_next(tmp_path):
    SLOW_DIR.mkdir(parents=True, exist_ok=True)
    SLOW_DIR.chmod(0o755)
    slow = SLOW_DIR / f"slow-chromium-{uuid.uuid4().hex[:8]}"
    # Slow to launch a browser, not to tell its version (the readiness probe asks that).
    slow.write_text('#!/bin/sh\n[ "$1" = --version ] || sleep 3\nexec /usr/bin/chromium "$@"\n')
    slow.chmod(0o755)
    data_dir = tmp_path / "srv"
    key = f"bctrl_sec_{uuid.uuid4().hex}"
    env = dict(BCTRL_REDIS_URL="", BCTRL_CHROMIUM_PATH=str(slow), BCTRL_LAUNCH_TIMEOUT_SECONDS="60")
    first = start_server(data_dir, "", key, "unused", **env)
    second = None
    try:
        with first.client() as client:
            space = client.post("/v1/spaces", json={"name": "kill"}).json()

            def create() -> None:
                try:
                    client.post(f"/v1/spaces/{space['id']}/runtimes", json={})
                except httpx.HTTPError:
                    pass  # the server dies under this request

            threading.Thread(target=create, daemon=True).start()
            deadline = time.monotonic() + 30
            while not (pids := chromium_pids(profile_fragment(data_dir))) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pids, "the launch did not start"
            first.process.send_signal(signal.SIGKILL)
            first.process.wait()
        runtime_id = Path(_profile_of(pids[0])).name.split(".")[0]
        time.sleep(3.5)  # past the wrapper's sleep: a real Chromium is running now, nobody tracking it
        assert chromium_pids(profile_fragment(data_dir, runtime_id)), "the browser should have outlived its server"

        second = start_server(data_dir, "", key, "unused", **{**env, "BCTRL_CHROMIUM_PATH": "/usr/bin/chromium"})
        deadline = time.monotonic() + 15
        while chromium_pids(profile_fragment(data_dir, runtime_id)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert chromium_pids(profile_fragment(data_dir, runtime_id)) == []
        with second.client() as client:
            runtime = client.get(f"/v1/spaces/{space['id']}/runtimes/{runtime_id}").json()
        assert runtime["status"] == "failed", runtime
    finally:
        if second is not None:
            stop_server(second)
        if first.process.poll() is None:
            stop_server(first, signal.SIGKILL)
        slow.unlink(missing_ok=True)
        assert chromium_pids(profile_fragment(data_dir)) == [], "Chromium left behind"

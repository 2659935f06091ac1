"""The Docker driver end to end: a hardened Chromium container per runtime, driven through the proxy,
removed at stop, and reconciled when the server process dies and comes back."""

from __future__ import annotations

import signal
import uuid

from playwright.sync_api import sync_playwright

from tests.docker.conftest import DOCKER_ENV, containers_of, gone
from tests.e2e.conftest import PAGES, create_db, drop_db, lease, start_server, stop_server
from tests.e2e.test_cdp import events_of, wait_for


def _runtime(client) -> dict:
    space = client.post("/v1/spaces", json={"name": f"docker-{uuid.uuid4().hex[:6]}"}).json()
    runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
    assert runtime["status"] == "active", runtime
    return runtime


def _stop(client, runtime: dict) -> None:
    response = client.post(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/stop")
    assert response.status_code == 200, response.text


def _drive(url: str, page_url: str) -> str:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(url)
        page = browser.contexts[0].new_page()
        page.goto(page_url)
        title = page.title()
        browser.close()
    return title


def test_runtime_runs_in_a_container_driven_through_the_proxy_and_removed_at_stop(
    dlive, engine, pages, stop_afterwards
):
    with dlive.client() as client:
        runtime = _runtime(client)
        stop_afterwards(runtime["id"])
        [container] = containers_of(engine, runtime["id"])
        assert container.status == "running"
        assert container.labels["io.bctrl.run"] == runtime["activeRunId"]
        url = lease(client, runtime).json()["endpoint"]["url"]
        # The container shares the host's network: it reaches the page server on loopback.
        assert _drive(url, f"{pages.url}/one.html") == "page one"
        navigated = [
            e["data"]["url"] for e in events_of(client, runtime["activeRunId"]) if e["type"] == "page.navigated"
        ]
        assert f"{pages.url}/one.html" in navigated  # the observer watches the container's browser too
        _stop(client, runtime)
        assert gone(engine, container.id)
        assert client.get(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}").json()["status"] == "stopped"


def test_container_is_hardened(dlive, engine):
    with dlive.client() as client:
        runtime = _runtime(client)
        try:
            [container] = containers_of(engine, runtime["id"])
            host = container.attrs["HostConfig"]
            assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
            assert "no-new-privileges:true" in host["SecurityOpt"]
            assert host["ReadonlyRootfs"] is True and not host["Privileged"]
            assert host["Memory"] == 2 * 1024**3 and host["NanoCpus"] == 2 * 10**9 and host["PidsLimit"] == 1024
            assert set(host["Tmpfs"]) == {"/tmp", "/home/chrome", "/downloads"}
            assert container.attrs["Config"]["User"] == "chrome"
            # Inside: not root, and the root filesystem refuses writes.
            assert container.exec_run(["id", "-u"]).output.strip() == b"1000"
            assert container.exec_run(["touch", "/etc/owned"]).exit_code != 0
            status = container.exec_run(["grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/1/status"]).output.decode()
            assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
        finally:
            _stop(client, runtime)


def test_download_in_a_container_becomes_a_run_artifact(dlive, pages, stop_afterwards):
    with dlive.client() as client:
        runtime = _runtime(client)
        stop_afterwards(runtime["id"])
        run_id = runtime["activeRunId"]
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            page.goto(f"{pages.url}/one.html")
            with page.expect_download():
                page.click("#dl")
            browser.close()
        completed = wait_for(
            lambda: [e for e in events_of(client, run_id) if e["type"] == "download.completed"], timeout=20
        )
        assert completed[0]["data"]["captured"] is True, completed
        artifact = next(a for a in client.get(f"/v1/runs/{run_id}/artifacts").json()["data"] if a["kind"] == "download")
        assert client.get(artifact["downloadUrl"]).content == (PAGES / "report.csv").read_bytes()
        _stop(client, runtime)


def test_a_killed_container_fails_its_run(dlive, engine):
    with dlive.client() as client:
        runtime = _runtime(client)
        [container] = containers_of(engine, runtime["id"])
        container.kill()
        path = f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}"
        failed = wait_for(lambda: (r := client.get(path).json())["status"] == "failed" and r, timeout=15)
        assert failed["failure"]["code"] == "runtime.browser_exited"
        run = client.get(f"/v1/runs/{runtime['activeRunId']}").json()
        assert run["status"] == "failed"
        wait_for(lambda: gone(engine, container.id), timeout=30)


def test_server_restart_adopts_live_containers_removes_orphans_and_fails_lost_ones(tmp_path, engine, pages):
    database, key, prefix = create_db(), f"bctrl_e2e_{uuid.uuid4().hex}", f"bctrl-test-{uuid.uuid4().hex[:8]}"
    servers, leftovers = [], []
    try:
        first = start_server(tmp_path / "first", database, key, prefix, **DOCKER_ENV)
        servers.append(first)
        with first.client() as client:
            kept, lost = _runtime(client), _runtime(client)
        [kept_container] = containers_of(engine, kept["id"])
        [lost_container] = containers_of(engine, lost["id"])
        leftovers += [kept_container, lost_container]
        stop_server(first, signal.SIGKILL)
        # While no server runs: one browser container dies, and a labelled container nobody knows appears.
        lost_container.remove(force=True)
        orphan = engine.containers.run(
            "bctrl/chromium:latest",
            entrypoint=["sleep", "300"],
            detach=True,
            network_mode="none",
            labels={**kept_container.labels, "io.bctrl.runtime": str(uuid.uuid4())},
        )
        leftovers.append(orphan)
        second = start_server(tmp_path / "second", database, key, prefix, **DOCKER_ENV)
        servers.append(second)
        with second.client() as client:
            wait_for(lambda: gone(engine, orphan.id), timeout=15)
            lost_path = f"/v1/spaces/{lost['spaceId']}/runtimes/{lost['id']}"
            failed = wait_for(lambda: (r := client.get(lost_path).json())["status"] == "failed" and r, timeout=15)
            assert failed["failure"]["code"] == "runtime.browser_exited"
            # The surviving browser is adopted: still active, and a new lease drives it.
            assert client.get(f"/v1/spaces/{kept['spaceId']}/runtimes/{kept['id']}").json()["status"] == "active"
            assert engine.containers.get(kept_container.id).status == "running"
            response = lease(client, kept)
            assert response.status_code == 201, response.text
            assert _drive(response.json()["endpoint"]["url"], f"{pages.url}/two.html") == "page two"
            wait_for(
                lambda: any(
                    e["type"] == "page.navigated" and e["data"]["url"].endswith("/two.html")
                    for e in events_of(client, kept["activeRunId"])
                ),
                timeout=10,
            )
            _stop(client, kept)
            assert gone(engine, kept_container.id)
    finally:
        for server in servers:
            stop_server(server)
        for container in leftovers:
            if not gone(engine, container.id):
                container.remove(force=True)
        drop_db(database)

"""Issue 11 item 1 on the local driver: with its own key, runtime and lease, a client cannot make the
browser read the host (its data directory, /etc, chrome:// internals), cannot turn the database into
a download artifact, cannot read another runtime's profile, and cannot reach the control plane."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import uuid

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from app.drivers.local import browser_uid
from tests.e2e.conftest import lease
from tests.e2e.test_cdp import events_of, wait_for
from tests.security.conftest import active_runtime, embedded_server
from tests.support import browser_root, chromium_pids, profile_fragment

BLOCKED = "ERR_BLOCKED_BY_ADMINISTRATOR"


def _uids(pid: int) -> list[int]:
    line = next(entry for entry in open(f"/proc/{pid}/status") if entry.startswith("Uid:"))
    return [int(x) for x in line.split()[1:]]


def _as_uid(uid: int, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *command],
        capture_output=True,
        text=True,
    )


def settled_content(page) -> str:
    """The page's HTML once it stops navigating: the error page of the last refusal may still be
    committing when the refusal returns."""
    for _ in range(40):
        page.wait_for_load_state()
        with contextlib.suppress(PlaywrightError):
            return page.content()
        page.wait_for_timeout(250)
    return page.content()


def test_the_escalation_fails_at_its_first_step(embedded, pages):
    data_dir = embedded.data_dir.resolve()
    db = data_dir / "bctrl.sqlite3"
    # The data directory and the database are the server's alone.
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600

    with active_runtime(embedded) as victim, active_runtime(embedded) as mine, embedded.client() as client:
        url = lease(client, mine).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            got = {}
            for target in (f"file://{data_dir}/", f"file://{data_dir}/objects/", f"file://{db}", "file:///etc/passwd"):
                with pytest.raises(PlaywrightError) as refused:
                    page.goto(target)
                got[target] = refused.value.message.splitlines()[0]
            print("escalation:", got)
            assert all(BLOCKED in (message or "") for message in got.values()), got
            assert "root:" not in settled_content(page)

            # A client pointing downloads at the data directory: the browser cannot write there, and
            # nothing outside the run's own download area is read back as an artifact.
            cdp = browser.new_browser_cdp_session()
            cdp.send(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(data_dir), "eventsEnabled": True},
            )
            page.goto(f"{pages.url}/one.html")
            page.click("#dl")
            page.wait_for_timeout(1500)
            # A host file picked for an upload is refused by the proxy's guard.
            with pytest.raises(PlaywrightError, match="runtime's file area"):
                cdp.send("DOM.setFileInputFiles", {"files": ["/etc/passwd"], "backendNodeId": 1})
            # Last (Chromium 156 here may end the whole browser on a blocked chrome:// navigation):
            # whatever happens, the internal page is never shown.
            probe = browser.contexts[0].new_cdp_session(page)
            for target in ("chrome://version", "view-source:file:///etc/passwd"):
                try:
                    outcome = probe.send("Page.navigate", {"url": target}).get("errorText")
                except PlaywrightError as exc:
                    outcome = "browser ended: " + exc.message.splitlines()[0]
                print("escalation:", target, outcome)
                assert outcome and (BLOCKED in outcome or outcome.startswith("browser ended")), outcome
            with contextlib.suppress(PlaywrightError):
                browser.close()

        run_id = mine["activeRunId"]
        ended = wait_for(
            lambda: [e for e in events_of(client, run_id) if e["type"] in ("download.completed", "download.canceled")],
            timeout=15,
        )
        assert all(not e["data"].get("captured") for e in ended), ended
        assert not (data_dir / "report.csv").exists()
        artifacts = client.get(f"/v1/runs/{run_id}/artifacts").json()["data"]
        for artifact in artifacts:
            assert not client.get(artifact["downloadUrl"]).content.startswith(b"SQLite format 3")
        assert not [a for a in artifacts if a["kind"] == "download"]

        # The browser runs as a uid of its own, not root, with none of the server's environment.
        pids = chromium_pids(profile_fragment(data_dir, mine["id"]))
        assert pids
        mine_uid = browser_uid(uuid.UUID(mine["id"]))
        for pid in pids:
            assert _uids(pid) == [mine_uid] * 4
        environ = open(f"/proc/{pids[0]}/environ", "rb").read()
        assert b"BCTRL_" not in environ

        # Its uid reads neither the other runtime's profile nor the data directory.
        victim_profile = next(p for p in (browser_root(data_dir) / "profiles").glob(f"{victim['id']}.*") if p.is_dir())
        assert browser_uid(uuid.UUID(victim["id"])) != mine_uid
        for path in (victim_profile, data_dir, db):
            result = _as_uid(mine_uid, "cat", str(path / "Local State") if path == victim_profile else str(path))
            assert result.returncode != 0 and "Permission denied" in result.stderr, (path, result)
        assert _as_uid(mine_uid, "ls", str(victim_profile)).returncode != 0


def test_a_page_cannot_reach_the_control_plane(backed, pages):
    port = backed.url.rsplit(":", 1)[1]
    with active_runtime(backed) as rt, backed.client() as client:
        url = lease(client, rt).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            assert page.goto(f"{pages.url}/one.html").status == 200  # an ordinary loopback page
            refused = {}
            for target in (
                f"http://127.0.0.1:{port}/readyz",
                f"http://localhost:{port}/healthz",
                "http://127.0.0.1:5432/",
                "http://127.0.0.1:6379/",
                "http://169.254.169.254/latest/meta-data/",
                f"http://0.0.0.0:{port}/readyz",
                f"http://[::1]:{port}/readyz",
            ):
                response = page.goto(target)
                refused[target] = (response.status, response.headers.get("x-bctrl-egress"))
                assert "egress policy" in page.content()
            assert all(v == (403, "refused") for v in refused.values()), refused
            # A page's own fetch gets the proxy's refusal, never the service's answer.
            page.goto(f"{pages.url}/one.html")
            status = page.evaluate(f"fetch('http://127.0.0.1:{port}/readyz').then(r => r.status, e => 'failed')")
            assert status in (403, "failed")
            with pytest.raises(PlaywrightError, match="ERR_TUNNEL_CONNECTION_FAILED"):
                page.goto(f"https://127.0.0.1:{port}/")
            # A browser context with its own proxy would go around the egress proxy: refused.
            with pytest.raises(PlaywrightError, match="Per-context proxies are not allowed"):
                browser.new_context(proxy={"server": "direct://"})
            browser.close()


def test_public_egress_refuses_loopback_pages(tmp_path, pages):
    with embedded_server(tmp_path, BCTRL_BROWSER_EGRESS="public") as server:
        with active_runtime(server) as rt, server.client() as client:
            url = lease(client, rt).json()["endpoint"]["url"]
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(url)
                page = browser.contexts[0].new_page()
                response = page.goto(f"{pages.url}/one.html")
                assert response.status == 403 and "BCTRL_BROWSER_EGRESS=public" in page.content()
                assert page.goto("http://10.1.2.3/").status == 403  # refused before any connection is tried
                browser.close()

"""Issue 11 item 1 on the Docker driver: the escalation fails at its first step (the runtime image's
managed policy refuses file:, chrome: and view-source), nothing of the host becomes an artifact, the
browser is not root, and a page cannot reach the control plane (the egress proxy, host networking)."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.docker.conftest import containers_of
from tests.e2e.conftest import lease

BLOCKED = "ERR_BLOCKED_BY_ADMINISTRATOR"


def test_the_escalation_fails_at_its_first_step_in_a_container(dlive, engine, pages):
    port = dlive.url.rsplit(":", 1)[1]
    data_dir = dlive.data_dir.resolve()
    with dlive.client() as client:
        space = client.post("/v1/spaces", json={"name": f"iso-{uuid.uuid4().hex[:6]}"}).json()
        rt = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        assert rt["status"] == "active", rt
        try:
            [container] = containers_of(engine, rt["id"])
            assert container.exec_run(["id", "-u"]).output.strip() == b"1000"
            policy = json.loads(container.exec_run(["cat", "/etc/chromium/policies/managed/bctrl.json"]).output)
            assert "file://*" in policy["URLBlocklist"]
            url = lease(client, rt).json()["endpoint"]["url"]
            got = {}
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(url)
                page = browser.contexts[0].new_page()
                for target in (f"file://{data_dir}/", "file:///etc/passwd"):
                    with pytest.raises(PlaywrightError) as refused:
                        page.goto(target)
                    got[target] = refused.value.message.splitlines()[0]
                page = browser.contexts[0].new_page()  # a fresh tab: the blocked page's error page may still load
                assert page.goto(f"{pages.url}/one.html").status == 200
                for target in (
                    f"http://127.0.0.1:{port}/readyz",
                    "http://127.0.0.1:5432/",
                    "http://127.0.0.1:6379/",
                    "http://169.254.169.254/",
                ):
                    response = page.goto(target)
                    got[target] = (response.status, response.headers.get("x-bctrl-egress"))
                    assert got[target] == (403, "refused"), got
                probe = browser.contexts[0].new_cdp_session(page)
                for target in ("chrome://version", "view-source:file:///etc/passwd"):
                    try:
                        got[target] = probe.send("Page.navigate", {"url": target}).get("errorText")
                    except PlaywrightError as exc:
                        got[target] = "browser ended: " + exc.message.splitlines()[0]
                with contextlib.suppress(PlaywrightError):
                    browser.close()
            print("docker escalation:", got)
            assert all(BLOCKED in got[t] for t in (f"file://{data_dir}/", "file:///etc/passwd")), got
            assert all(
                BLOCKED in got[t] or got[t].startswith("browser ended")
                for t in ("chrome://version", "view-source:file:///etc/passwd")
            ), got
            artifacts = client.get(f"/v1/runs/{rt['activeRunId']}/artifacts").json()["data"]
            assert not [a for a in artifacts if a["kind"] == "download"]
        finally:
            client.post(f"/v1/spaces/{space['id']}/runtimes/{rt['id']}/stop")

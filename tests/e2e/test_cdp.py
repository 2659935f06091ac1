"""Playwright and raw websocket clients through the CDP proxy of a real server process."""

from __future__ import annotations

import struct
import time

import pytest
import websockets.sync.client as ws_sync
from playwright.sync_api import sync_playwright
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import lease


def wait_for(check, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def events_of(client, run_id: str, **params) -> list[dict]:
    return client.get(f"/v1/runs/{run_id}/events", params={"limit": 200, **params}).json()["data"]


def _closed_yet(page) -> bool:
    """Let Playwright's sync API process its events; True once the page's connection is gone."""
    try:
        page.wait_for_timeout(50)
    except Exception as exc:  # TargetClosedError
        return "closed" in str(exc)
    return False


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def refusal(url: str) -> tuple[int, dict]:
    """The HTTP status and envelope a refused websocket upgrade got."""
    with pytest.raises(InvalidStatus) as caught:
        with ws_sync.connect(url, open_timeout=10):
            pass
    response = caught.value.response
    import json

    return response.status_code, json.loads(response.body.decode())


@pytest.mark.parametrize("form", ["ws", "http"])
def test_playwright_drives_the_browser_through_the_proxy(live, runtime, pages, form):
    with live.client() as client:
        created = lease(client, runtime)
        assert created.status_code == 201, created.text
        connection = created.json()
        endpoint = connection["endpoint"]["url"] if form == "ws" else connection["endpoint"]["httpUrl"]
        assert endpoint.startswith(form + "://127.0.0.1:")

        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(endpoint)
            context = browser.contexts[0] if browser.contexts else browser.new_context()
            page = context.new_page()
            page.goto(f"{pages.url}/index.html")
            assert page.title() == "bctrl test page"
            page.click("#go")
            assert page.text_content("#status") == "clicked 1"
            page.fill("#field", "typed through the proxy")
            assert page.input_value("#field") == "typed through the proxy"

            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(f"{pages.url}/tall.html")
            page.wait_for_function("document.title === 'tall page ready'")
            shot = page.screenshot(full_page=True)
            assert png_size(shot) == (1280, 16000)
            assert len(shot) > 10_000_000, "a screenshot of tens of MB went through the proxy"
            page.close()
            browser.close()

        run_id = runtime["activeRunId"]
        types = wait_for(
            lambda: (
                [
                    e["type"]
                    for e in events_of(client, run_id, connectionId=connection["id"])
                    if e["type"] == "connection.detached"
                ]
                and [e["type"] for e in events_of(client, run_id)]
            )
        )
        assert "connection.created" in types and "connection.attached" in types
        commands = [
            e for e in events_of(client, run_id, type="connection.command") if e["connectionId"] == connection["id"]
        ]
        methods = {m["method"]: m for e in commands for m in e["data"]["methods"]}
        assert "Page.navigate" in methods and "Page.captureScreenshot" in methods
        assert methods["Page.captureScreenshot"]["avgMs"] is not None
        # The listing never shows the URL again.
        listed = client.get(f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}/connections").json()
        assert [c["id"] for c in listed["connections"]] == [connection["id"]]
        assert listed["data"][0]["endpoint"] is None and "token" not in str(listed)


def test_discovery_endpoints_point_back_at_the_proxy(live, runtime):
    with live.client() as client:
        connection = lease(client, runtime).json()
        http_url = connection["endpoint"]["httpUrl"]
        base, query = http_url.split("?", 1)
        for suffix in ("/json/version", "/json/version/"):
            version = client.get(f"{base}{suffix}?{query}").json()
            assert version["webSocketDebuggerUrl"] == connection["endpoint"]["url"]
            assert "Chrome" in version["Browser"] or "Chromium" in version["Browser"]
        targets = client.get(f"{base}/json/list?{query}").json()
        assert targets and all(
            t["webSocketDebuggerUrl"].startswith(base.replace("http://", "ws://") + "/devtools/")
            for t in targets
            if "webSocketDebuggerUrl" in t
        )
        assert all("devtoolsFrontendUrl" not in t for t in targets)
        # A page-level socket from /json/list works through the proxy too.
        page_target = next(t for t in targets if t["type"] == "page")
        with ws_sync.connect(page_target["webSocketDebuggerUrl"], max_size=None) as sock:
            sock.send('{"id":1,"method":"Runtime.evaluate","params":{"expression":"6*7","returnByValue":true}}')
            import json

            reply = json.loads(sock.recv(timeout=10))
            assert reply["id"] == 1 and reply["result"]["result"]["value"] == 42
        bad = client.get(f"{base}/json/version?token=wrong")
        assert bad.status_code == 401 and bad.json()["code"] == "connection.token_invalid"
        assert client.get(f"{base}/json/protocol?{query}").status_code == 404


def test_refusals_before_the_upgrade_leave_no_lock_held(live, runtime, space):
    with live.client() as client:
        first = lease(client, runtime).json()
        url = first["endpoint"]["url"]
        base = url.split("?", 1)[0]
        assert refusal(base)[0] == 401
        status, body = refusal(f"{base}?token=not-the-token")
        assert status == 401 and body["code"] == "connection.token_invalid"
        assert refusal(url.replace(first["id"], "00000000-0000-7000-8000-000000000000"))[0] == 401
        assert refusal(url.replace(first["id"], "garbage"))[0] == 401

        busy = lease(client, runtime)
        assert busy.status_code == 409 and busy.json()["code"] == "runtime.controller_busy"
        assert busy.json()["details"]["holder"].items() >= {"kind": "connection", "id": first["id"]}.items()

        revoked = client.delete(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{first['id']}")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked" and revoked.json()["revokedAt"]
        again = client.delete(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{first['id']}")
        assert again.status_code == 200 and again.json()["revokedAt"] == revoked.json()["revokedAt"]
        status, body = refusal(url)
        assert status == 409 and body["code"] == "connection.revoked"

        second = lease(client, runtime)
        assert second.status_code == 201, "revoke released the lock"
        other_token = second.json()["endpoint"]["url"].split("token=", 1)[1]
        # A valid token of one lease does not open another.
        assert refusal(f"{base}?token={other_token}")[0] == 401

        for body in (
            {"protocol": "cua"},
            {"protocol": "cdp", "ttlSeconds": 7201},
            {"protocol": "cdp", "ttlSeconds": 30},
            {"ttlSeconds": 600},
            {"protocol": "cdp", "ttlSeconds": "long"},
        ):
            bad = client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections", json=body)
            assert bad.status_code == 400 and bad.json()["code"] == "request.invalid", body

        types = [e["type"] for e in events_of(client, runtime["activeRunId"], category="connection")]
        assert types.count("connection.created") == 2 and types.count("connection.revoked") == 1


def test_revoke_keeps_open_sockets_and_stop_closes_them(live, space, pages, stop_afterwards):
    with live.client() as client:
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        stop_afterwards(runtime["id"])
        connection = lease(client, runtime).json()
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(connection["endpoint"]["url"])
            page = browser.contexts[0].new_page()
            client.delete(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{connection['id']}")
            # Already attached: the socket stays usable after revoke.
            page.goto(f"{pages.url}/index.html")
            assert page.title() == "bctrl test page"
            disconnected = []
            browser.on("disconnected", lambda _: disconnected.append(True))
            stopped = client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
            assert stopped.json()["status"] == "stopped"
            wait_for(lambda: _closed_yet(page) or disconnected, timeout=10)

        conn = client.get(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{connection['id']}").json()
        assert conn["status"] == "revoked"
        detached = events_of(client, runtime["activeRunId"], type="connection.detached")
        assert detached and detached[-1]["data"]["endedBy"] in ("server", "browser")
        refused = lease(client, runtime)
        assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_active"


def test_lease_on_stopped_runtime_and_closed_lease(live, space, stop_afterwards):
    with live.client() as client:
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        stop_afterwards(runtime["id"])
        connection = lease(client, runtime).json()
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")
        conn = client.get(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/connections/{connection['id']}").json()
        assert conn["status"] == "closed" and conn["closedAt"]
        status, body = refusal(connection["endpoint"]["url"])
        assert status == 409 and body["code"] == "connection.closed"
        # Started again: the old lease stays closed, and a new one can be taken.
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/start")
        assert refusal(connection["endpoint"]["url"])[1]["code"] == "connection.closed"
        assert lease(client, runtime).status_code == 201


def test_asgi_relay_is_the_same_proxy(tmp_path, pages):
    """With BCTRL_CDP_SPLICE=false the websocket goes through the ASGI relay: same checks, same events."""
    from tests.e2e.conftest import cluster

    with cluster(tmp_path, BCTRL_CDP_SPLICE="false") as (server,), server.client() as client:
        space = client.post("/v1/spaces", json={"name": "asgi"}).json()
        runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}).json()
        connection = lease(client, runtime).json()
        status, body = refusal(connection["endpoint"]["url"].split("?")[0] + "?token=nope")
        assert status == 401 and body["code"] == "connection.token_invalid"
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(connection["endpoint"]["url"])
            page = browser.contexts[0].new_page()
            page.goto(f"{pages.url}/index.html")
            page.click("#go")
            assert page.text_content("#status") == "clicked 1"
            browser.close()
        detached = wait_for(lambda: events_of(client, runtime["activeRunId"], type="connection.detached"))
        assert detached[0]["data"]["endedBy"] == "client"
        commands = events_of(client, runtime["activeRunId"], type="connection.command")
        assert any(m["method"] == "Page.navigate" for e in commands for m in e["data"]["methods"])
        client.post(f"/v1/spaces/{space['id']}/runtimes/{runtime['id']}/stop")

"""Security: a browser with a proxy of its own, adopted by a new server process after a crash, keeps
leaving through its upstream proxy (never straight out from this host)."""

from __future__ import annotations

import signal

import httpx
from bctrl import Bctrl

from tests.e2e.conftest import create_db, drop_db, start_server, stop_server
from tests.e2e.test_current_proxies import visit
from tests.e2e.test_current_sdk import unique
from tests.proxy_helpers import TestProxy
from tests.support import chromium_pids, profile_fragment


def test_an_adopted_browser_keeps_its_upstream_proxy(tmp_path, pages):
    url = create_db()
    data_dir = tmp_path / "adopt"
    upstream = TestProxy("http", username="alice", password="right")
    server = start_server(data_dir, url, "bctrl_adopt_key", "unused", BCTRL_REDIS_URL="")
    try:
        client = Bctrl(token=server.api_key, base_url=server.url)
        created = client.browsers.create(name=unique("adopted"), proxy=upstream.url_with("alice", "right"), wait=30)
        cdp = created.current_run.connections.cdp_url
        status, _ = visit(cdp, f"{pages.url}/index.html")
        assert status == 200 and upstream.seen
        before = len(upstream.seen)
        stop_server(server, signal.SIGKILL)
        port = int(server.url.rsplit(":", 1)[1])
        server = start_server(data_dir, url, "bctrl_adopt_key", "unused", port=port, BCTRL_REDIS_URL="")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"}) as c:
            assert c.get(f"/v1/runtimes/{created.id}").json()["status"] == "active"
        client = Bctrl(token=server.api_key, base_url=server.url)
        cdp = client.browsers.get(created.id).current_run.connections.cdp_url
        status, _ = visit(cdp, f"{pages.url}/index.html?after-restart")
        # Its entrance is open again, chaining to the same upstream: never straight out from this host.
        assert status == 200 and len(upstream.seen) > before, "the adopted browser left without its upstream proxy"
    finally:
        stop_server(server)
        upstream.close()
        assert chromium_pids(profile_fragment(data_dir)) == []
        drop_db(url)

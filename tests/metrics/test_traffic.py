"""A real server process: a browser started, leased, driven over CDP, streamed and stopped moves the
counters, gauges and histograms of /metrics by what was done (scraped and parsed like Prometheus)."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import websockets.sync.client as ws_sync
from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import cluster
from tests.metrics.support import samples, total, value

CURRENT = {"BCTRL-Version": "2026-10-03"}
COMMANDS = 25
LOCAL = {"driver": "local", "location": "local"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("metrics"), BCTRL_SSE_HEARTBEAT_SECONDS="1") as servers:
        yield servers[0]


def scrape(live) -> dict:
    answer = httpx.get(f"{live.url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"token": token}
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_start_lease_cdp_stream_and_stop_move_the_metrics(live):
    client = Bctrl(token=live.api_key, base_url=live.url)
    before = scrape(live)

    def moved(now: dict, name: str, **labels) -> float:
        return value(now, name, **labels) - value(before, name, **labels)

    created = client.browsers.create(name=f"metrics-{uuid.uuid4().hex[:8]}", wait=30)
    try:
        assert created.status == "running"
        run = created.current_run
        running = scrape(live)
        # One start, timed: the histogram got one observation, of a plausible length.
        assert moved(running, "bctrl_browser_starts_total", **LOCAL, outcome="started") == 1
        assert moved(running, "bctrl_browser_starts_total", **LOCAL, outcome="failed") == 0
        assert moved(running, "bctrl_browser_start_seconds_count", **LOCAL) == 1
        took = moved(running, "bctrl_browser_start_seconds_sum", **LOCAL)
        assert 0 < took < 60
        assert value(running, "bctrl_browsers", driver="local", status="active") == 1
        # The run's CDP lease took the controller lock.
        assert moved(running, "bctrl_leases_created_total", scope="run") >= 1
        assert value(running, "bctrl_leases_active", scope="run") == 1
        assert moved(running, "bctrl_controller_takes_total", holder="connection", outcome="granted") >= 1
        # The create was counted under its route template.
        assert moved(running, "bctrl_http_requests_total", method="POST", route="/v1/browsers", status="201") == 1

        # CDP traffic through the proxy (the TCP splice of `serve`): every message and byte counted.
        sent = received = 0
        with ws_sync.connect(run.connections.cdp_url, open_timeout=10, max_size=None) as socket:
            for ident in range(1, COMMANDS + 1):
                frame = json.dumps({"id": ident, "method": "Browser.getVersion"})
                socket.send(frame)
                sent += len(frame)
                reply = socket.recv(timeout=10)
                assert json.loads(reply)["id"] == ident
                received += len(reply)
            during = scrape(live)
            assert value(during, "bctrl_cdp_connections") == 1
            assert moved(during, "bctrl_cdp_connections_opened_total") == 1
            assert moved(during, "bctrl_cdp_messages_total", direction="client_to_browser") == COMMANDS
            assert moved(during, "bctrl_cdp_messages_total", direction="browser_to_client") >= COMMANDS
            # Bytes on the wire: the payloads plus the websocket framing (6 to 14 bytes a client frame).
            client_bytes = moved(during, "bctrl_cdp_bytes_total", direction="client_to_browser")
            assert sent + 6 * COMMANDS <= client_bytes <= sent + 14 * COMMANDS
            assert moved(during, "bctrl_cdp_bytes_total", direction="browser_to_client") >= received
        assert eventually(lambda: value(scrape(live), "bctrl_cdp_connections") == 0)

        # A refused attach is counted by its code.
        with pytest.raises(InvalidStatus):
            with ws_sync.connect(with_token(run.connections.cdp_url, "wrong"), open_timeout=10):
                pass
        refused = scrape(live)
        assert moved(refused, "bctrl_cdp_attach_refusals_total", code="connection.token_invalid") == 1

        # An open event stream is a subscriber until it closes.
        route = "/v1/runs/{run_id}/stream"
        headers = {"Authorization": f"Bearer {live.api_key}", **CURRENT}
        with httpx.stream("GET", f"{live.url}/v1/runs/{run.id}/stream", headers=headers, timeout=30) as stream:
            assert stream.status_code == 200
            # Held: a line iterator dropped is closed, and the connection with it.
            lines = stream.iter_lines()
            assert next(lines).startswith(("data:", "id:", "event:", ":"))
            assert value(scrape(live), "bctrl_sse_subscribers", route=route) == 1
            lines.close()
        assert eventually(lambda: value(scrape(live), "bctrl_sse_subscribers", route=route) == 0)

        stopped = client.browsers.stop(created.id, wait=30)
        assert stopped.status == "idle"
        after = scrape(live)
        assert value(after, "bctrl_browsers", driver="local", status="active") == 0
        assert value(after, "bctrl_leases_active", scope="run") == 0
        # The run's events (the observer's, the socket's) went through the batching writer.
        assert moved(after, "bctrl_events_written_total") > 0
        assert total(after, "bctrl_events_dropped_total") == total(before, "bctrl_events_dropped_total")
        # No id of anything made here is a label value: route templates only.
        made = {created.id, run.id}
        assert not [key for key in after if any(i in v for i in made for _k, v in key[1])]
    finally:
        try:
            client.browsers.delete(created.id)
        except NotFoundError:
            pass

"""Server processes sharing PostgreSQL: a delivery under way when its server is killed arrives after the
restart (same webhook-id), and two servers never send one delivery at the same time nor twice."""

from __future__ import annotations

import signal
import time
import uuid
from contextlib import contextmanager

from bctrl import Bctrl

from tests.e2e.conftest import create_db, drop_db, start_server, stop_server
from tests.webhooks.receiver import Receiver

FAST = dict(
    BCTRL_WEBHOOK_EGRESS="private",
    BCTRL_WEBHOOK_POLL_SECONDS="0.1",
    BCTRL_WEBHOOK_RETRY_BASE_SECONDS="0.2",
    BCTRL_WEBHOOK_RETRY_MAX_SECONDS="0.5",
    BCTRL_WEBHOOK_TIMEOUT_SECONDS="2",
)


@contextmanager
def database(tmp_path):
    url = create_db()
    key = f"bctrl_e2e_{uuid.uuid4().hex}"
    prefix = f"bctrl-test-{uuid.uuid4().hex[:8]}"
    servers = []

    def start(name: str):
        servers.append(start_server(tmp_path / name, url, key, prefix, **FAST))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            stop_server(server)
        drop_db(url)


def sdk(server) -> Bctrl:
    return Bctrl(token=server.api_key, base_url=server.url, max_retries=0, timeout=30)


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_delivery_under_way_when_the_server_is_killed_arrives_after_the_restart(tmp_path):
    rx = Receiver(hang=60).start()  # holds the first attempt open until the server dies
    try:
        with database(tmp_path) as start:
            first = start("a")
            client = sdk(first)
            hook = client.webhooks.create(url=rx.url, events=["*"])
            rx.secret = hook.secret
            queued = client.webhooks.test(hook.id)
            wait_for(lambda: rx.in_flight == 1, "the attempt to reach the receiver")
            stop_server(first, signal.SIGKILL)
            rx.hang = 0
            second = start("b")
            wait_for(lambda: len(rx.received) == 1, "the delivery after the restart")
            assert rx.received[0].delivery_id == queued.id  # the same webhook-id: receivers can dedupe
            done = sdk(second).webhooks.deliveries.list(hook.id).data
            assert [(d.id, d.status) for d in done] == [(queued.id, "sent")] and done[0].attempt_count == 2
            time.sleep(1.0)
            assert len(rx.received) == 1 and rx.bad_signatures == 0
    finally:
        rx.hang = 0
        rx.close()


def test_two_servers_never_send_one_delivery_at_once_nor_twice(tmp_path):
    rx = Receiver(fail_with=500, hang=0.05).start()
    try:
        with database(tmp_path) as start:
            servers = [start("a"), start("b")]
            clients = [sdk(s) for s in servers]
            hook = clients[0].webhooks.create(url=rx.url, events=["*"])
            rx.secret = hook.secret
            queued = [clients[n % 2].webhooks.test(hook.id).id for n in range(30)]
            wait_for(lambda: rx.attempts >= 10, "attempts while the receiver fails")
            rx.fail_with = None
            wait_for(lambda: len(rx.received) >= len(queued), "every delivery")
            time.sleep(1.0)
            got = [r.delivery_id for r in rx.received]
            assert got == queued  # each once, in the order they were queued
            assert max(rx.max_in_flight.values()) == 1  # never two attempts of one delivery at once
            assert rx.bad_signatures == 0
            listed = clients[1].webhooks.deliveries.list(hook.id, limit=100).data
            assert {d.status for d in listed} == {"sent"} and len(listed) == len(queued)
    finally:
        rx.close()

"""The admission queue across two `bctrl-server serve` processes sharing one PostgreSQL database, with
one browser slot: FIFO across processes, the slot passed to the next waiter when a browser stops,
429 with Retry-After and the place in the queue, a waiter that hangs up or whose process dies holds
no place, a running browser is never refused, and `/pressure` follows it all."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import httpx
import pytest
from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError

from tests.e2e.conftest import cluster, stop_server

CURRENT = {"BCTRL-Version": "2026-10-03"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with cluster(
        tmp_path_factory.mktemp("admission"),
        count=2,
        BCTRL_MAX_RUNTIMES="1",
        BCTRL_ADMISSION_QUEUE_MAX="2",
        # One account fills the queue here (its share is a quarter of it by default).
        BCTRL_ADMISSION_QUEUE_MAX_PER_ACCOUNT="2",
        BCTRL_ADMISSION_POLL_SECONDS="0.1",
        BCTRL_ADMISSION_TICKET_TTL_SECONDS="3",
    ) as made:
        yield made


def sdk(server) -> Bctrl:
    return Bctrl(token=server.api_key, base_url=server.url, max_retries=0, timeout=90)


def raw(server, timeout: float = 90) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.api_key}", **CURRENT}
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


def pressure(server) -> dict:
    answer = httpx.get(f"{server.url}/pressure", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s (last: {value!r})")
        time.sleep(0.05)


@pytest.fixture
def browsers(servers):
    """Browsers a test made, deleted (so stopped) in teardown whatever the outcome."""
    made: list[str] = []
    yield made.append
    client = sdk(servers[0])
    for browser_id in made:
        try:
            client.browsers.get(browser_id, wait=30)  # a start under way settles first
            client.browsers.delete(browser_id)
        except NotFoundError:
            pass
    # Nothing a test left behind waits or runs for the next one.
    until(lambda: pressure(servers[0])["queue"]["depth"] == 0 and pressure(servers[0])["slots"][0]["used"] == 0)


def names(server) -> list[str]:
    return sorted(b.name for b in sdk(server).browsers.list().data)


def test_waiters_get_the_slot_in_order_across_processes(servers, browsers):
    one, two = servers
    first = sdk(one).browsers.create(name="first", wait=30)
    browsers(first.id)
    assert first.status == "running"
    full = pressure(two)
    assert full["slots"] == [{"driver": "local", "location": "local", "total": 1, "used": 1, "free": 0}]
    assert full["isAvailable"] is False and full["free"] == 0 and full["queue"]["depth"] == 0
    assert 0 <= full["host"]["cpuPercent"] <= 100 and full["host"]["memoryAvailableBytes"] > 0

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # The earlier waiter on the second process, the later on the first (where the stop happens).
        early = pool.submit(lambda: sdk(two).browsers.create(name="early", wait=50))
        until(lambda: pressure(one)["queue"]["depth"] == 1)
        late = pool.submit(lambda: sdk(one).browsers.create(name="late", wait=50))
        until(lambda: pressure(two)["queue"]["depth"] == 2)
        assert pressure(one)["queue"]["oldestWaitSeconds"] > 0
        sdk(one).browsers.stop(first.id, wait=30)

        got = early.result(timeout=60)
        browsers(got.id)
        assert got.name == "early" and got.current_run is not None
        assert not late.done(), "the later waiter took the slot of the earlier one"
        assert pressure(one)["queue"]["depth"] == 1
        until(lambda: sdk(one).browsers.get(got.id).status == "running")

        # The slot goes on to the next waiter when that browser stops.
        sdk(two).browsers.stop(got.id, wait=30)
        last = late.result(timeout=60)
        browsers(last.id)
        assert last.name == "late" and last.current_run is not None
    assert pressure(one)["queue"]["depth"] == 0
    until(lambda: pressure(two)["slots"][0]["used"] == 1)
    sdk(one).browsers.stop(last.id, wait=30)
    freed = until(lambda: (p := pressure(two))["slots"][0]["free"] == 1 and p)
    assert freed["isAvailable"] is True and freed["free"] == 1


def test_refused_start_is_429_with_retry_after_and_its_place(servers, browsers):
    one, two = servers
    first = sdk(one).browsers.create(name="holder", wait=30)
    browsers(first.id)
    with raw(two) as client:
        refused = client.post("/v1/browsers", json={"name": "refused"})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "browser.concurrent_quota_exceeded" and error["reasonClass"] == "rate_limited"
        assert error["details"]["position"] == 1 and error["details"]["limit"] == 1
        assert error["details"]["scope"] == "deployment" and error["details"]["queueFull"] is False
        # A running browser is never refused: starting it again answers it as it runs.
        again = client.post(f"/v1/browsers/{first.id}/start", params={"wait": 5})
        assert again.status_code == 200 and again.json()["status"] == "running", again.text
        assert again.json()["currentRun"]["id"] == first.current_run.id

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            # The earlier waiter waits longer, so the later one's wait ends while it is second in line.
            w1 = pool.submit(lambda: raw(one).post("/v1/browsers", params={"wait": 8}, json={"name": "w1"}))
            until(lambda: pressure(one)["queue"]["depth"] == 1)
            w2 = pool.submit(lambda: raw(two).post("/v1/browsers", params={"wait": 4}, json={"name": "w2"}))
            until(lambda: pressure(one)["queue"]["depth"] == 2)
            # The queue holds two: a third that would wait is refused at once, and says so.
            full = client.post("/v1/browsers", params={"wait": 30}, json={"name": "w3"})
            assert full.status_code == 429
            details = full.json()["error"]["details"]
            assert details["queueFull"] is True and details["queueDepth"] == 2 and details["position"] == 3
            # Waiters whose wait ends without a slot get the 429 with their place then.
            answers = [w1.result(timeout=30), w2.result(timeout=30)]
    assert [a.status_code for a in answers] == [429, 429]
    assert [a.json()["error"]["details"]["position"] for a in answers] == [1, 2]
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
    # Refused creates keep nothing.
    assert names(one) == ["holder"]
    assert pressure(two)["queue"]["depth"] == 0


def test_a_waiter_that_hangs_up_holds_no_place(servers, browsers):
    one, two = servers
    first = sdk(one).browsers.create(name="held", wait=30)
    browsers(first.id)
    with raw(two, timeout=1.5) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post("/v1/browsers", params={"wait": 40}, json={"name": "gone"})
    # The server notices the hang-up at its next look: the place is given up, the browser not kept.
    until(lambda: pressure(one)["queue"]["depth"] == 0, timeout=10)
    until(lambda: names(one) == ["held"], timeout=10)
    sdk(one).browsers.stop(first.id, wait=30)
    # The freed slot is for whoever asks next, not for the caller that left.
    after = sdk(two).browsers.create(name="next", wait=30)
    browsers(after.id)
    assert after.current_run is not None
    assert names(one) == ["held", "next"]


def test_a_waiter_of_a_dead_process_expires(servers, browsers):
    """Last in this module: it kills the second server."""
    one, two = servers
    first = sdk(one).browsers.create(name="busy", wait=30)
    browsers(first.id)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    orphan = pool.submit(lambda: raw(two).post("/v1/browsers", params={"wait": 50}, json={"name": "orphan"}))
    until(lambda: pressure(one)["queue"]["depth"] == 1)
    stop_server(two, signal.SIGKILL)
    with pytest.raises(httpx.HTTPError):
        orphan.result(timeout=10)
    pool.shutdown()
    # No heartbeat for the ticket's TTL (3 s here): it no longer counts, and the slot is not kept for it.
    until(lambda: pressure(one)["queue"]["depth"] == 0, timeout=15)
    sdk(one).browsers.stop(first.id, wait=30)
    after = sdk(one).browsers.create(name="after", wait=30)
    browsers(after.id)
    assert after.status == "running"

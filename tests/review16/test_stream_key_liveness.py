"""An event stream does not outlive its key: once the key is revoked, expires, or its subaccount is
archived, the stream (the account's `/v1/events/stream`, and a run's streams of both generations) ends
within a few heartbeats with an `error` frame naming why, while a stream of a valid key goes on. A real
server process (in-process clients buffer streams), heartbeats every half second."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError
from bctrl._generated.types import ApiKeyCreateRequestZero

from tests.e2e.conftest import cluster

CURRENT = {"BCTRL-Version": "2026-10-03"}
HEARTBEAT = 0.5
# A revoked key's stream must end within this many seconds (several heartbeats).
WITHIN = 5.0


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with cluster(
        tmp_path_factory.mktemp("liveness"), BCTRL_SSE_HEARTBEAT_SECONDS=str(HEARTBEAT), BCTRL_MAX_RUNTIMES="1"
    ) as servers:
        yield servers[0]


@pytest.fixture(scope="module")
def admin(live):
    return Bctrl(token=live.api_key, base_url=live.url)


def bearer(secret: str, current: bool = True) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **(CURRENT if current else {})}


def new_key(admin, **fields) -> tuple[str, str]:
    made = admin.api_keys.create(request=ApiKeyCreateRequestZero(name=f"stream-{uuid.uuid4().hex[:6]}", **fields))
    return made.data.id, made.secret


def streams_after(live, opened: list[tuple[str, dict]], then) -> list[tuple[bool, str | None]]:
    """Opens each stream (path, headers), reads a first line of each, calls `then()`, and reads each until
    the server ends it or WITHIN seconds have passed: (ended, code of its error frame) per stream."""
    with ExitStack() as stack:
        readers = []
        for path, headers in opened:
            answer = stack.enter_context(httpx.stream("GET", f"{live.url}{path}", headers=headers, timeout=30))
            assert answer.status_code == 200, answer.read()
            lines = answer.iter_lines()
            next(lines)
            readers.append(lines)
        then()
        deadline = time.monotonic() + WITHIN
        out = []
        for lines in readers:
            code, event, ended = None, None, True
            for line in lines:
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:") and event == "error":
                    data = json.loads(line.partition(":")[2])
                    code = (data.get("error") or data)["code"]
                if time.monotonic() > deadline:
                    ended = False
                    break
            out.append((ended, code))
        return out


def test_a_revoked_key_ends_its_account_event_stream_and_a_valid_key_stream_goes_on(live, admin):
    key_id, secret = new_key(admin)
    got = streams_after(
        live,
        [("/v1/events/stream", bearer(secret)), ("/v1/events/stream", bearer(live.api_key))],
        lambda: admin.api_keys.delete(key_id),
    )
    assert got[0] == (True, "auth.invalid")
    assert got[1] == (False, None)  # the other key's stream is still open
    assert httpx.get(f"{live.url}/v1/events/stream", headers=bearer(secret), timeout=10).status_code == 401


def test_an_expired_key_ends_its_stream(live, admin):
    _key_id, secret = new_key(admin, expires_at=datetime.now(UTC) + timedelta(seconds=2))
    got = streams_after(live, [("/v1/events/stream", bearer(secret))], lambda: time.sleep(2))
    assert got == [(True, "auth.expired")]


def test_archiving_a_subaccount_ends_its_key_stream(live, admin):
    sub = admin.subaccounts.create(name=f"stream-{uuid.uuid4().hex[:6]}")
    _key_id, secret = new_key(admin, type="subaccount", subaccount_id=sub.id)
    got = streams_after(live, [("/v1/events/stream", bearer(secret))], lambda: admin.subaccounts.archive(sub.id))
    assert got == [(True, "subaccount.archived")]


def test_a_revoked_key_ends_the_run_streams_of_both_generations(live, admin):
    browser = admin.browsers.create(name=f"stream-{uuid.uuid4().hex[:6]}", wait=30)
    try:
        assert browser.status == "running", browser
        run_id = browser.current_run.id
        key_id, secret = new_key(admin)
        got = streams_after(
            live,
            [
                (f"/v1/runs/{run_id}/stream", bearer(secret)),  # the current generation's typed frames
                (f"/v1/runs/{run_id}/events/stream", bearer(secret, current=False)),
                (f"/v1/runs/{run_id}/stream", bearer(secret, current=False)),
            ],
            lambda: admin.api_keys.delete(key_id),
        )
        assert got == [(True, "auth.invalid")] * 3
    finally:
        try:
            admin.browsers.delete(browser.id)
        except NotFoundError:
            pass

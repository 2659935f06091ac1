"""`/v1/events` in the current generation over both backends: a real run's events in the `Event` shape,
filters (and those naming what this server does not have), paging both ways, one event by id, another
account's events, and the stream's resume point (the service, read directly: in-process clients buffer
SSE bodies)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.runs import events_query
from app.runs.events_query import EventQuery, EventScope, Located
from app.runs.models import Run
from tests.support import eventually

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def _finished_run(api, stop_afterwards) -> dict:
    """A browser started and stopped through the flat routes: its run has lifecycle and connection events."""
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    run_id = runtime["activeRunId"]
    assert (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).status_code == 200
    # Events may still land for a moment after the stop (the writer's last batch): wait until they settled.
    last: list = []

    async def settled():
        nonlocal last
        now = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 200})).json()["data"]
        same, last = now == last, now
        # The recording is made after the run and announced by an event of the run when it is done.
        recording = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()
        return same and recording.get("status") not in ("preparing", "processing")

    # A loaded host encodes the recording slowly (seen: over 15 s in CI).
    await eventually(settled, timeout=90, interval=0.5)
    return {"runtime": runtime["id"], "run": run_id, "space": runtime["spaceId"]}


async def _events(api, **params) -> dict:
    answer = await api.get("/v1/events", params=params, headers=CURRENT)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_runs_events_in_the_current_shape(api, stop_afterwards):
    made = await _finished_run(api, stop_afterwards)
    page = await _events(api, run=made["run"], order="asc", limit=200)
    assert page["hasMore"] is False and page["nextCursor"] is None
    types = [e["type"] for e in page["data"]]
    assert types[0] == "runtime.starting" and "runtime.active" in types and "runtime.stopped" in types
    started = page["data"][0]
    assert started["object"] == "event" and started["category"] == "lifecycle" and started["source"] == "runtime"
    assert started["channel"] == "platform" and started["outcome"] == "ok" and started["actor"]["type"] == "platform"
    assert started["runId"] == made["run"] and started["runtimeId"] == made["runtime"]
    assert started["spaceId"] == made["space"] and started["seq"] == 1
    assert started["target"] == {"kind": "browser", "id": made["runtime"]}
    assert started["time"] == started["timestamp"] == started["createdAt"]
    created = next(e for e in page["data"] if e["type"] == "connection.created")
    assert created["category"] == "connection" and created["channel"] == "cdp"
    assert created["actor"]["type"] == "api_key" and created["target"]["kind"] == "connection"

    # Newest first by default; one event by id, the same object.
    newest = await _events(api, run=made["run"], limit=200)
    assert [e["id"] for e in newest["data"]] == [e["id"] for e in reversed(page["data"])]
    one = await api.get(f"/v1/events/{started['id']}", headers=CURRENT)
    assert one.status_code == 200 and one.json() == started


async def test_filters_and_paging(api, stop_afterwards):
    made = await _finished_run(api, stop_afterwards)
    everything = (await _events(api, browser=made["runtime"], order="asc", limit=200))["data"]
    assert everything and {e["runId"] for e in everything} == {made["run"]}

    # Two at a time, oldest first: every event once, in (time, id) order.
    seen, cursor = [], None
    while True:
        params = {"browser": made["runtime"], "order": "asc", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await _events(api, **params)
        seen += page["data"]
        assert len(page["data"]) <= 2 and page["hasMore"] == (page["nextCursor"] is not None)
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    times = [e["time"] for e in seen]
    assert times == sorted(times)

    lifecycle = (await _events(api, run=made["run"], category="lifecycle", limit=200))["data"]
    assert lifecycle and {e["category"] for e in lifecycle} == {"lifecycle"}
    both = await api.get(
        "/v1/events",
        params=[("run", made["run"]), ("category", "lifecycle"), ("category", "connection")],
        headers=CURRENT,
    )
    assert {e["category"] for e in both.json()["data"]} == {"lifecycle", "connection"}
    assert [e["type"] for e in (await _events(api, run=made["run"], type="runtime.active"))["data"]] == [
        "runtime.active"
    ]
    cdp = (await _events(api, run=made["run"], channel="cdp", limit=200))["data"]
    assert cdp and {e["channel"] for e in cdp} == {"cdp"}
    assert (await _events(api, run=made["run"], outcome="failed"))["data"] == []
    assert len((await _events(api, run=made["run"], outcome="ok", limit=200))["data"]) == len(everything)
    assert (await _events(api, run=made["run"], actorType="human"))["data"] == []
    connection = next(e for e in everything if e["type"] == "connection.created")
    by_actor = (await _events(api, run=made["run"], actor=connection["actor"]["id"], limit=200))["data"]
    assert by_actor and all(e["actor"]["id"] == connection["actor"]["id"] for e in by_actor)
    later = (await _events(api, run=made["run"], **{"from": everything[-1]["time"]}))["data"]
    assert everything[-1]["id"] in [e["id"] for e in later] and len(later) < len(everything)
    assert (await _events(api, run=made["run"], to=everything[0]["time"]))["data"] == []

    # What this server does not have matches nothing; so does a browser name that names no browser.
    for name in ("sandbox", "conversation", "agent"):
        assert (await _events(api, **{name: "anything"}))["data"] == []
    assert (await _events(api, browser="no-such-browser"))["data"] == []
    assert (await _events(api, run="not-a-run"))["data"] == []
    assert (await _events(api, task=str(uuid.uuid4())))["data"] == []

    for bad in ({"category": "nonsense"}, {"outcome": "maybe"}, {"order": "up"}, {"cursor": "bm90LWEtY3Vyc29y"}):
        answer = await api.get("/v1/events", params=bad, headers=CURRENT)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["reasonClass"] == "invalid_input"


async def test_scoped_space_and_other_accounts(server, api, stop_afterwards):
    made = await _finished_run(api, stop_afterwards)
    other_space = (await api.post("/v1/spaces", json={"name": "elsewhere"})).json()
    assert (await _events(api, run=made["run"], spaceId=other_space["id"]))["data"] == []
    assert (await _events(api, run=made["run"], spaceId=made["space"]))["data"]
    event = (await _events(api, run=made["run"]))["data"][0]
    in_other = await api.get(f"/v1/events/{event['id']}", headers={**CURRENT, "BCTRL-Space": other_space["id"]})
    assert in_other.status_code == 404 and in_other.json()["error"]["code"] == "event.not_found"
    async with await server.client("other") as other:
        assert (await other.get("/v1/events", headers=CURRENT)).json()["data"] == []
        gone = await other.get(f"/v1/events/{event['id']}", headers=CURRENT)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "event.not_found"
        assert (await other.get("/v1/events/stream", params={"after": event["id"]}, headers=CURRENT)).status_code == 400
    assert (await api.get("/v1/events/not-an-id", headers=CURRENT)).status_code == 404


async def _collect(agen, count: int, timeout: float = 15.0) -> list[Located]:
    found: list[Located] = []

    async def take():
        async for item in agen:
            if isinstance(item, list):  # a page of events (else a heartbeat)
                found.extend(item)
                if len(found) >= count:
                    return

    await asyncio.wait_for(take(), timeout)
    return found


async def test_follow_delivers_new_events_of_every_run_and_resumes(server, api, stop_afterwards):
    """The stream's service: events of runs in the scope as they are committed, each run's in sequence
    order, none before the stream started; resumed after an event, that run continues right after it."""
    account = (await api.get("/v1/auth/whoami")).json()["organizationId"]
    scope = EventScope(account_id=uuid.UUID(account))
    old = await _finished_run(api, stop_afterwards)
    agen = events_query.follow(server.ctx, scope, EventQuery(categories=("runtime",)))
    reader = asyncio.ensure_future(_collect(agen, 3))
    await asyncio.sleep(0.3)  # the stream is open (a follower registers before it reads)
    new = await _finished_run(api, stop_afterwards)
    got = await reader
    await agen.aclose()
    assert [(f.event.type, str(f.event.run_id)) for f in got] == [
        ("runtime.starting", new["run"]),
        ("runtime.active", new["run"]),
        ("runtime.stopped", new["run"]),
    ]
    assert all(str(f.event.run_id) != old["run"] for f in got)

    # Resumed after the first: that run's next events, in order, and nothing of it twice.
    # (Other runs restart a couple of seconds before it, REPLAY_SECONDS: the browser's scope leaves them out.)
    browser = EventScope(account_id=scope.account_id, runtime_id=uuid.UUID(new["runtime"]))
    after = await events_query.resume_point(server.ctx, browser, str(got[0].event.id))
    resumed = events_query.follow(server.ctx, browser, EventQuery(categories=("runtime",)), after=after)
    again = await _collect(resumed, 2)
    await resumed.aclose()
    assert [f.event.type for f in again] == ["runtime.active", "runtime.stopped"]

    with pytest.raises(Exception) as unknown:
        await events_query.resume_point(server.ctx, scope, str(uuid.uuid4()))
    assert getattr(unknown.value, "status", None) == 400

    async def run_ended():
        async with server.ctx.db.read() as s:
            return (await s.get(Run, uuid.UUID(new["run"]))).status != "active"

    await eventually(run_ended)

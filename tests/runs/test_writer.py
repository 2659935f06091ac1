"""The batching event writer: sequence numbers, and its policy when the queue fills."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core import clock, ids
from app.runs.models import RunEvent
from app.runs.service import purge_old_events
from app.runs.writer import EventWriter

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def _run_id(api) -> uuid.UUID:
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    return uuid.UUID(runtime["activeRunId"]), runtime["id"]


async def test_full_queue_samples_network_first_and_never_drops_the_rest(server, api, stop_afterwards):
    run_id, runtime_id = await _run_id(api)
    stop_afterwards(runtime_id)
    writer = EventWriter(server.ctx.db, bulk_capacity=100, capacity=1_000, batch_size=100_000)
    kept = sum(writer.emit(run_id, "network.response", "network", {"i": i}) for i in range(300))
    for i in range(50):
        assert writer.emit(run_id, "console.message", "console", {"i": i}) is True
    assert kept == 100, "the queue holds its capacity"
    while writer.pending or writer._dropped:
        await writer.flush()

    events = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 200, "category": "console"})).json()
    assert [e["data"]["i"] for e in events["data"]] == list(range(50))
    network = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 200, "type": "network.response"})).json()
    assert len(network["data"]) == kept
    kept_i = [e["data"]["i"] for e in network["data"]]
    # The first half of the queue takes everything; then one in two, then one in four, then nothing.
    assert kept_i[:50] == list(range(50)) and kept_i[50:52] == [51, 53] and max(kept_i) > 150
    dropped = (await api.get(f"/v1/runs/{run_id}/events", params={"type": "events.dropped"})).json()["data"]
    assert dropped[0]["data"]["count"] == 300 - kept
    assert dropped[0]["data"]["byType"] == {"network.response": 300 - kept}
    page = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 200})).json()
    assert page["nextCursor"] is None
    everything = page["data"]
    seqs = [e["seq"] for e in everything]
    assert seqs == list(range(1, len(seqs) + 1)), "one sequence, no gaps, no repeats"


async def test_old_events_are_purged_when_retention_is_set(make_server):
    async with make_server("postgres", event_retention_days=1) as srv, await srv.client() as api:
        run_id, runtime_id = await _run_id(api)
        old = clock.now() - timedelta(days=2)
        async with srv.ctx.db.transaction() as s:
            s.add(
                RunEvent(
                    id=ids.new_id(),
                    run_id=run_id,
                    seq=10_000,
                    time=old,
                    type="console.message",
                    category="console",
                    source="browser",
                    connection_id=None,
                    page_id=None,
                    data={},
                )
            )
        assert await purge_old_events(srv.ctx) == 1
        async with srv.ctx.db.transaction() as s:
            left = await s.execute(select(func.count()).select_from(RunEvent).where(RunEvent.run_id == run_id))
            assert left.scalar_one() > 0, "recent events stay"
        await api.post(f"/v1/runtimes/{runtime_id}/stop")


async def test_a_nul_character_in_page_text_does_not_block_other_events(server, api, stop_afterwards):
    run_id, runtime_id = await _run_id(api)
    stop_afterwards(runtime_id)
    writer = EventWriter(server.ctx.db)
    writer.emit(run_id, "console.message", "console", {"text": "before\x00after", "args": ["a\x00"]})
    writer.emit(run_id, "console.message", "console", {"text": "next"})
    while writer.pending:
        await writer.flush()
    texts = [
        e["data"]["text"]
        for e in (await api.get(f"/v1/runs/{run_id}/events", params={"category": "console"})).json()["data"]
    ]
    assert texts == ["before\ufffdafter", "next"]


async def test_an_event_of_a_run_another_process_owns_now_is_not_written(server, api, stop_afterwards):
    """The fencing token of run ownership: the observer's events carry its server instance, and a batch
    writes them only while the run's browser names that instance as its owner."""
    run_id, runtime_id = await _run_id(api)
    stop_afterwards(runtime_id)
    me = server.ctx.driver.instance
    writer = EventWriter(server.ctx.db)
    writer.emit(run_id, "console.message", "console", {"text": "mine"}, owner=me)
    writer.emit(run_id, "console.message", "console", {"text": "stale"}, owner="another-replica")
    writer.emit(run_id, "console.message", "console", {"text": "unowned"})
    while writer.pending:
        await writer.flush()
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"category": "console"})).json()["data"]
    assert [e["data"]["text"] for e in events] == ["mine", "unowned"]
    seqs = [e["seq"] for e in (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 200})).json()["data"]]
    assert seqs == list(range(1, len(seqs) + 1)), "a fenced event leaves no gap"

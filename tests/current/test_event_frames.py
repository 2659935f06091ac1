"""The current run stream's `runtime.event` frames and pages over both backends: every kind of event framed
from the rows the stream reads is the `Event` that `GET /v1/events/{id}` describes (`event_dict`), and a
run's events come page after page in order, none twice, none missed."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from sqlalchemy import select

from app.current import event_shapes
from app.runs import streams
from app.runs.models import Run, RunEvent
from app.runs.writer import EventWriter
from tests.current.runs import active_run

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


# (type, category, data, page_id, connection) of every shape a frame takes.
KINDS = [
    ("network.response", "network", {"requestId": "r-1", "status": 200}, "p1", False),
    ("network.request", "network", {"requestId": 7}, None, False),
    ("network.failed", "network", {"url": "x"}, None, False),
    ("console.message", "console", {"text": 'quote " back \\ nul \u2603 <&>', "args": [1, 2.5, None]}, 'pa"ge', False),
    ("page.error", "browser", {"message": "boom"}, "p2", False),
    ("connection.attached", "connection", {}, None, True),
    ("runtime.active", "runtime", {}, None, False),
    ("runtime.failed", "runtime", {"reason": "x"}, "p3", False),
    ("events.dropped", "lifecycle", {"count": 3}, None, False),
    ("invocation.step", "invocation", {"invocationId": "inv-1", "n": 1}, None, False),
    ("invocation.failed", "invocation", {}, None, False),
    ("live.joined", "live", {"viewerId": "v-1"}, None, False),
    ("artifact.created", "artifact", {"artifactId": "a-1"}, None, False),
    ("something.else", "unheard-of", {"nested": {"a": [{"b": "c"}]}}, None, False),
]


async def test_runtime_event_frames_are_the_events(server, api):
    run = await active_run(server, api)
    writer = EventWriter(server.ctx.db)
    connection = uuid.uuid4()
    for type_, category, data, page_id, with_connection in KINDS:
        writer.emit(
            run.id, type_, category, data, page_id=page_id, connection_id=connection if with_connection else None
        )
    while writer.pending:
        await writer.flush()
    async with server.ctx.db.read() as s:
        stored = list(
            (await s.execute(select(RunEvent).where(RunEvent.run_id == run.id).order_by(RunEvent.seq))).scalars()
        )
        run = await s.get(Run, run.id)
    assert len(stored) == len(KINDS)

    rows = await streams.read_rows(server.ctx, run.id, 0, len(KINDS))
    body = event_shapes.runtime_event_frames(rows, run).decode()
    frames = body.split("\n\n")
    assert frames[-1] == "" and len(frames) == len(KINDS) + 1
    for frame, event in zip(frames, stored, strict=False):
        id_line, data_line = frame.split("\n")
        assert id_line == f"id: {event.id}"
        assert data_line.startswith("data: ")
        want = event_shapes.event_dict(event, run.space_id, run.runtime_id)
        assert orjson.loads(data_line[6:]) == {
            "type": "runtime.event",
            "id": str(event.id),
            "runId": str(run.id),
            "timestamp": want["time"],
            "event": want,
        }
    kinds = {
        (f["type"], f["outcome"], f["target"]["kind"] if f["target"] else None)
        for f in (orjson.loads(fr.split("\n")[1][6:])["event"] for fr in frames[:-1])
    }
    assert ("network.failed", "failed", "request") in kinds
    assert ("invocation.step", "ok", "task") in kinds
    assert ("connection.attached", "ok", "connection") in kinds
    assert ("runtime.active", "ok", "browser") in kinds


async def test_updates_pages_through_a_busy_run_in_order(server, api):
    run = await active_run(server, api)
    writer = EventWriter(server.ctx.db)
    total = streams.ROWS_PAGE * 2 + 17
    for i in range(total):
        writer.emit(run.id, "network.response", "network", {"requestId": str(i)})
    while writer.pending:
        await writer.flush()

    seen: list[int] = []

    async def take():
        async for item in streams.updates(server.ctx, run, 0):
            if isinstance(item, list):
                assert len(item) <= streams.ROWS_PAGE
                seen.extend(row.seq for row in item)
                if len(seen) >= total + 3:
                    return

    reader = asyncio.ensure_future(take())
    await asyncio.sleep(0.2)
    for i in range(3):  # written while the stream is open: woken, read after the rest
        writer.emit(run.id, "console.message", "console", {"text": str(i)})
    while writer.pending:
        await writer.flush()
    await asyncio.wait_for(reader, 15)
    assert seen == list(range(1, total + 4))

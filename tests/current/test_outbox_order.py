"""The outbox gives a run's events (and a task's run-less events) in their sequence order, also when the
transaction that numbered an event later holds the lower transaction id: it took its id with a first
write, then waited while another transaction numbered and committed the owner's next event. Drains and
webhooks deliver in outbox order, so a receiver saw seq 4, 5 before 3 (PostgreSQL only: SQLite has one
writer at a time)."""

from __future__ import annotations

from sqlalchemy import text

from app.outbox import service as outbox
from app.runs import events
from tests.current.runs import active_run, task_row


async def _xid(s) -> int:
    """This transaction's id, taken now if it has none yet (as its first write would)."""
    return int((await s.execute(text("SELECT pg_current_xact_id()::text::bigint"))).scalar_one())


async def _numbered_late_by_the_older_transaction(server, append) -> list[int]:
    """`append(s)` in a transaction that takes its id first but commits its event second; the sequence
    numbers of the owner's events as the outbox gives them."""
    start = await outbox.head(server.ctx)
    async with server.ctx.db.transaction() as older:
        older_id = await _xid(older)
        async with server.ctx.db.transaction() as newer:
            assert await _xid(newer) > older_id
            first = await append(newer)
        second = await append(older)
    assert (first.seq, second.seq) == (second.seq - 1, second.seq)
    page = await outbox.read(server.ctx, start)
    mine = {first.id, second.id}
    return [item.event.seq for item in page.items if item.event.id in mine]


async def test_a_runs_events_leave_the_outbox_in_sequence_order(server, api):
    run = await active_run(server, api)

    async def append(s):
        return await events.append(s, run.id, "page.load", "browser", {"url": "about:blank"})

    assert await _numbered_late_by_the_older_transaction(server, append) == [1, 2]


async def test_a_tasks_events_leave_the_outbox_in_sequence_order(server, api):
    task = await task_row(server, api)

    async def append(s):
        return await events.append(s, None, "task.step", "task", {"step": 1}, task_id=task.id)

    assert await _numbered_late_by_the_older_transaction(server, append) == [1, 2]

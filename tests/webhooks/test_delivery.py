"""Delivery guarantees in one process: a receiver that fails for a while, then recovers, gets every
event once (per delivery id), in order; deleting a webhook cancels what it had pending."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from app.outbox import service as outbox
from app.outbox.models import OutboxRow
from app.runs.models import Run, RunEvent
from app.webhooks.dispatcher import lowest_cursor

EVENTS = 25


async def fanned_out(wh_server, run_id: uuid.UUID, type: str, timeout: float = 20.0) -> None:
    """Until the fan-out has passed every outbox row of the run's events of `type` (a row is pruned only
    once every consumer passed it). Not "until the cursor reaches the outbox head": the head is
    commit-safe, so while any other transaction is in flight it lags behind rows already written."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with wh_server.ctx.db.read() as s:
            rows = (
                await s.execute(
                    select(OutboxRow.xact, OutboxRow.position)
                    .join(RunEvent, RunEvent.id == OutboxRow.event_id)
                    .where(RunEvent.run_id == run_id, RunEvent.type == type)
                )
            ).all()
        cursor = await lowest_cursor(wh_server.ctx)
        if all(cursor >= outbox.Cursor(r.xact, r.position) for r in rows):
            return
        assert asyncio.get_running_loop().time() < deadline, "the fan-out did not catch up"
        await asyncio.sleep(0.05)


async def stored(wh_server, run_id: uuid.UUID, type: str, count: int, timeout: float = 20.0) -> None:
    """Until `count` events of `type` of the run are in the database (the writer's own loop may be
    committing a batch it took from the queue: a flush from here does not wait for that one)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with wh_server.ctx.db.read() as s:
            query = select(func.count()).select_from(RunEvent).where(RunEvent.run_id == run_id, RunEvent.type == type)
            if (await s.execute(query)).scalar_one() >= count:
                return
        assert asyncio.get_running_loop().time() < deadline, "the event was not written"
        await asyncio.sleep(0.05)


async def run_of(sdk, wh_server, browsers) -> uuid.UUID:
    made = await sdk.browsers.create(wait=30, recording=False)
    browsers.append(made.id)
    async with wh_server.ctx.db.read() as s:
        return (await s.execute(select(Run.id).where(Run.runtime_id == uuid.UUID(made.id)))).scalars().first()


async def test_a_receiver_down_then_back_gets_every_event_once_in_order(sdk, wh_server, receiver, browsers):
    rx = receiver(fail_with=500)
    hook = await sdk.webhooks.create(url=rx.url, events=["probe.*"])
    rx.secret = hook.secret
    run_id = await run_of(sdk, wh_server, browsers)
    for n in range(EVENTS):
        wh_server.ctx.events.emit(run_id, "probe.tick", "lifecycle", {"n": n}, source="system")
        if n % 5 == 4:
            await asyncio.sleep(0.05)  # several writer batches, not one
    # Down: attempts keep coming (only the oldest delivery: the others wait behind it).
    await rx.wait_for(lambda r: r.attempts >= 4)
    pending = (await sdk.webhooks.deliveries.list(hook.id, order="asc", limit=100)).data
    assert len(pending) == EVENTS and pending[0].attempt_count >= 2 and pending[0].response_status == 500
    assert pending[0].next_attempt_at is not None and pending[0].last_error
    assert all(d.status in ("pending", "sending") for d in pending) and pending[-1].attempt_count == 0
    rx.fail_with = None  # back up
    await rx.wait_for(lambda r: len(r.received) >= EVENTS)
    await asyncio.sleep(0.5)  # nothing more arrives
    assert [r.body["data"]["data"]["n"] for r in rx.received] == list(range(EVENTS))
    ids = [r.delivery_id for r in rx.received]
    assert len(set(ids)) == EVENTS
    done = (await sdk.webhooks.deliveries.list(hook.id, order="asc", limit=100)).data
    assert [d.id for d in done] == ids and {d.status for d in done} == {"sent"}


async def test_deleting_a_webhook_cancels_its_pending_deliveries(sdk, wh_server, receiver):
    rx = receiver(fail_with=503)
    hook = await sdk.webhooks.create(url=rx.url, events=["*"])
    rx.secret = hook.secret
    queued = [await sdk.webhooks.test(hook.id) for _ in range(3)]
    await rx.wait_for(lambda r: r.attempts >= 1)
    await sdk.webhooks.delete(hook.id)
    # An attempt under way at the deletion finishes (and fails, the receiver still being down).
    await asyncio.sleep(1.0)
    rx.fail_with = None
    await asyncio.sleep(1.5)  # several retry periods
    assert rx.received == []
    async with wh_server.ctx.db.read() as s:
        from app.webhooks.models import WebhookDelivery

        rows = (
            await s.execute(select(WebhookDelivery.status).where(WebhookDelivery.webhook_id == uuid.UUID(hook.id)))
        ).scalars()
        statuses = set(rows)
    assert statuses <= {"cancelled", "failed"} and len(queued) == 3


async def test_a_disabled_webhook_gets_nothing_new(sdk, wh_server, receiver, browsers):
    rx = receiver()
    hook = await sdk.webhooks.create(url=rx.url, events=["probe.*"])
    rx.secret = hook.secret
    await sdk.webhooks.update(hook.id, enabled=False)
    run_id = await run_of(sdk, wh_server, browsers)
    wh_server.ctx.events.emit(run_id, "probe.tick", "lifecycle", {"n": 0}, source="system")
    await stored(wh_server, run_id, "probe.tick", 1)
    await fanned_out(
        wh_server, run_id, "probe.tick"
    )  # the event was written and passed by while the webhook was disabled
    await sdk.webhooks.update(hook.id, enabled=True)
    wh_server.ctx.events.emit(run_id, "probe.tick", "lifecycle", {"n": 1}, source="system")
    await rx.wait_for(lambda r: len(r.received) >= 1)
    await asyncio.sleep(0.5)
    assert [r.body["data"]["data"]["n"] for r in rx.received] == [1]

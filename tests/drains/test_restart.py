"""A server stopped in the middle of a drain's delivery loses nothing: the next process (another server
on the same PostgreSQL database) sends the same batch again (same webhook-id, same events), and the
receiver, deduplicating by webhook-id, has every event once, in order."""

from __future__ import annotations

import asyncio
import uuid

from bctrl._generated.types import DrainDestination_Https
from sqlalchemy import select

from app.drains.models import Drain
from app.runs import events
from app.runtimes.models import Runtime
from tests.conftest import fresh_pg_database, make_settings, running_app
from tests.drains.conftest import FAST, sdk_of
from tests.support import chromium_pids, eventually, profile_fragment


async def test_a_restart_mid_delivery_resends_the_batch(tmp_path, signed_receiver):
    async with fresh_pg_database() as url:
        settings = make_settings(tmp_path / "data", "postgres", url, **FAST)
        async with running_app(settings) as first, sdk_of(first) as sdk:
            drain = await sdk.drains.create(
                destination=DrainDestination_Https(url=signed_receiver.url), categories=["console"]
            )
            signed_receiver.secret = drain.secret
            signed_receiver.slow_next = 1  # the first batch is held until well after this server stopped
            signed_receiver.slow_seconds = 10.0
            made = await sdk.browsers.create(wait=30, recording=False)
            try:
                async with first.ctx.db.read() as s:
                    run_id = (
                        await s.execute(select(Runtime.active_run_id).where(Runtime.id == uuid.UUID(made.id)))
                    ).scalar()
                for i in range(12):
                    async with first.ctx.db.transaction() as s:
                        await events.append(s, run_id, "console.log", "console", {"i": i})
            finally:
                await sdk.browsers.stop(made.id)
                # The stop answers before the teardown ends: the server must not stop with Chromium up.
                fragment = profile_fragment(settings.data_dir)
                await eventually(lambda: chromium_pids(fragment) == [], timeout=20)
            assert await asyncio.to_thread(signed_receiver.slow_started.wait, 20)
        # The first server is gone; the held batch may or may not have been taken. A second server:
        async with running_app(settings) as second:
            await eventually(lambda: len(signed_receiver.events()) == 12, timeout=9)  # before the held one ends

            async def recorded():
                async with second.ctx.db.read() as s:
                    row = await s.get(Drain, uuid.UUID(drain.id))
                return row if row.events_sent == 12 and row.lease_owner is None else None

            await eventually(recorded, timeout=10)
        assert [e["data"]["i"] for e in signed_receiver.events()] == list(range(12))
        # A batch taken twice (its answer lost when the first server stopped) was the same batch.
        by_id: dict[str, list] = {}
        for batch_id, batch in signed_receiver.batches:
            assert by_id.setdefault(batch_id, batch) == batch

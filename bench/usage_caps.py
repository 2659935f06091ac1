"""How long `GET /v1/usage`'s measurement and admission's cap check take for an account with many runs
this month (the check runs inside admission's transaction, under its lock). PostgreSQL, no browsers:
rows are written directly. `python -m bench.usage_caps [runs]`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import timedelta

from app.accounts.service import create_account
from app.core import clock, ids
from app.core.db import Database
from app.runs.models import Run
from app.spaces.models import Space
from app.usage import caps
from app.usage.models import SpendingCap
from app.usage.service import Period, measure
from tests.conftest import fresh_pg_database


async def main(count: int) -> None:
    async with fresh_pg_database() as url:
        db = Database(url)
        account = await create_account(db, "bench")
        now = clock.now()
        start = Period.month_of(now).start
        async with db.transaction() as s:
            space = Space(
                id=ids.new_id(),
                account_id=account.id,
                name="b",
                region="local",
                is_default=True,
                created_at=now,
                updated_at=now,
            )
            s.add(space)
            await s.flush()
            for i in range(count):
                begun = start + timedelta(seconds=i)
                s.add(
                    Run(
                        id=ids.new_id(),
                        account_id=account.id,
                        space_id=space.id,
                        runtime_id=ids.new_id(),
                        runtime_type="browser",
                        status="completed",
                        recording=False,
                        event_seq=0,
                        created_at=begun,
                        started_at=begun,
                        finished_at=begun + timedelta(seconds=30),
                    )
                )
            s.add(
                SpendingCap(
                    scope_id=account.id,
                    account_id=account.id,
                    amount_cents=10**9,
                    warn_at_percent=80,
                    created_at=now,
                    updated_at=now,
                )
            )
        for name, call in (
            ("measure (GET /v1/usage)", lambda s: measure(s, account.id, Period.month_of(now), 1.0)),
            ("caps.refusal (admission)", lambda s: caps.refusal(s, account.id, space.id, 1.0)),
        ):
            times = []
            for _ in range(20):
                async with db.read() as s:
                    t = time.perf_counter()
                    await call(s)
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            print(
                f"{name}: {count} runs this month: median {statistics.median(times):.1f} ms, "
                f"p90 {times[int(len(times) * 0.9) - 1]:.1f} ms"
            )
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))

"""An account's browser starts in a period, each with how it ended and its latency: from the slot
granted (the run's start) to the browser running (its `runtime.start` command finished), which is what
`bctrl_browser_start_seconds` observes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from app.core.context import AppContext
from app.runs.command_models import Command
from app.runs.models import Run

# At most this many starts are read (far beyond what one hour of one account holds).
MAX_STARTS = 50_000


@dataclass(frozen=True)
class Start:
    at: datetime
    outcome: str  # started, failed, pending
    seconds: float | None


async def since(ctx: AppContext, account_id: uuid.UUID, when: datetime) -> list[Start]:
    """The account's runs started (admitted) since `when`, oldest first, each with how its start ended."""
    started = and_(Command.run_id == Run.id, Command.entry_call == "runtime.start")
    stmt = (
        select(Run.started_at, Run.finished_at, Command.finished_at)
        .outerjoin(Command, started)
        .where(Run.account_id == account_id, Run.started_at >= when)
        .order_by(Run.started_at)
        .limit(MAX_STARTS)
    )
    async with ctx.db.read() as s:
        rows = (await s.execute(stmt)).all()
    found = []
    for at, finished, running_at in rows:
        if running_at is not None:
            found.append(Start(at, "started", max(0.0, (running_at - at).total_seconds())))
        else:  # never ran: failed (or stopped) before running, or still starting
            found.append(Start(at, "failed" if finished is not None else "pending", None))
    return found

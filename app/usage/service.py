"""Usage measured from our own records: browser seconds (runs' start and end, a running one up to now),
runs, tasks, LLM tokens (the `commands` rows of tasks and invocations), storage bytes (space files and
run artifacts), per period (a UTC calendar month unless told). Priced in USD cents as browser minutes
times `BCTRL_PRICE_CENTS_PER_BROWSER_MINUTE`: the one thing spending caps count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.artifacts.models import Artifact
from app.core import clock
from app.core.context import AppContext
from app.core.db import UTCDateTime
from app.files.models import StorageFile
from app.runs.command_models import Command
from app.runs.models import Run, RunStatus
from app.spaces.models import Space

# The provider of a task's `commands` row (the others are runtime actions and invocations).
TASK_PROVIDER = "agent"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    @classmethod
    def month_of(cls, at: datetime) -> Period:
        """The UTC calendar month holding `at`."""
        at = at.astimezone(UTC)
        start = datetime(at.year, at.month, 1, tzinfo=UTC)
        end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
        return cls(start, end)


@dataclass(frozen=True)
class Usage:
    period: Period
    computed_at: datetime
    browser_seconds: float
    runs: int  # started in the period
    active_runs: int  # running now
    tasks: int  # created in the period
    input_tokens: int
    output_tokens: int
    files_bytes: int  # stored now (a level, not a flow)
    artifacts_bytes: int
    spaces: int
    cents: float  # browser minutes x the price

    @property
    def storage_bytes(self) -> int:
        return self.files_bytes + self.artifacts_bytes


def cents_of(seconds: float, price_cents_per_minute: float) -> float:
    return seconds / 60.0 * price_cents_per_minute


async def browser_seconds(
    s: AsyncSession, account_id: uuid.UUID, period: Period, now: datetime, space_id: uuid.UUID | None = None
) -> float:
    """Seconds browsers of the account (or of one space) ran within the period: each run's span clipped
    to it; a run still active counts up to `now`, one that ended without a recorded end counts nothing.
    Summed by the database (admission asks under its lock): epoch arithmetic on PostgreSQL, julianday on
    SQLite, which keeps datetimes as ISO text."""
    end = min(period.end, now)
    if end <= period.start:
        return 0.0
    until = func.coalesce(
        Run.finished_at, case((Run.status == RunStatus.ACTIVE, literal(now, UTCDateTime())), else_=Run.started_at)
    )
    lo, hi = literal(period.start, UTCDateTime()), literal(end, UTCDateTime())
    if s.bind.dialect.name == "postgresql":
        span = func.extract("epoch", func.least(until, hi) - func.greatest(Run.started_at, lo))
    else:
        span = (func.julianday(func.min(until, hi)) - func.julianday(func.max(Run.started_at, lo))) * 86400.0
    query = select(func.coalesce(func.sum(case((span > 0, span), else_=0)), 0)).where(
        Run.account_id == account_id,
        Run.started_at < period.end,
        or_(Run.finished_at.is_(None), Run.finished_at > period.start),
    )
    if space_id is not None:
        query = query.where(Run.space_id == space_id)
    return float((await s.execute(query)).scalar_one() or 0)


async def _scalar(s: AsyncSession, query) -> int:
    return int((await s.execute(query)).scalar_one() or 0)


async def measure(
    s: AsyncSession,
    account_id: uuid.UUID,
    period: Period,
    price_cents_per_minute: float,
    space_id: uuid.UUID | None = None,
) -> Usage:
    """The account's usage (or one space's) in the period, inside the caller's transaction."""
    now = clock.now()

    def scoped(query, model):
        query = query.where(model.account_id == account_id)
        return query if space_id is None else query.where(model.space_id == space_id)

    seconds = await browser_seconds(s, account_id, period, now, space_id)
    in_period = and_(Run.started_at >= period.start, Run.started_at < period.end)
    runs = await _scalar(s, scoped(select(func.count()).select_from(Run).where(in_period), Run))
    active = await _scalar(s, scoped(select(func.count()).select_from(Run).where(Run.status == RunStatus.ACTIVE), Run))
    commands = and_(Command.created_at >= period.start, Command.created_at < period.end)
    tasks = await _scalar(
        s, scoped(select(func.count()).select_from(Command).where(commands, Command.provider == TASK_PROVIDER), Command)
    )
    tokens = (
        await s.execute(
            scoped(
                select(
                    func.coalesce(func.sum(Command.input_tokens), 0), func.coalesce(func.sum(Command.output_tokens), 0)
                ).where(commands),
                Command,
            )
        )
    ).one()
    files = await _scalar(s, scoped(select(func.coalesce(func.sum(StorageFile.size_bytes), 0)), StorageFile))
    artifacts = await _scalar(s, scoped(select(func.coalesce(func.sum(Artifact.size_bytes), 0)), Artifact))
    spaces = (
        1
        if space_id is not None
        else await _scalar(s, select(func.count()).select_from(Space).where(Space.account_id == account_id))
    )
    return Usage(
        period=period,
        computed_at=now,
        browser_seconds=seconds,
        runs=runs,
        active_runs=active,
        tasks=tasks,
        input_tokens=int(tokens[0]),
        output_tokens=int(tokens[1]),
        files_bytes=files,
        artifacts_bytes=artifacts,
        spaces=spaces,
        cents=cents_of(seconds, price_cents_per_minute),
    )


async def usage_of(
    ctx: AppContext, account_id: uuid.UUID, period: Period | None = None, space_id: uuid.UUID | None = None
) -> Usage:
    """An account's usage (the current UTC month unless a period is given); subaccounts' usage too."""
    period = period or Period.month_of(clock.now())
    async with ctx.db.read() as s:
        return await measure(s, account_id, period, ctx.settings.price_cents_per_browser_minute, space_id)

"""Spending caps: a monthly limit in USD cents on an account and on each of its spaces, both applying.
Usage is browser minutes x the price (service.py). A cap reached refuses NEW starts (admission calls
`refusal` inside its transaction); a running browser is never stopped for it, so usage may pass the
cap by what the browsers running at that moment go on to use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.core import clock
from app.core.context import AppContext
from app.core.errors import DomainError, TooManyRequests
from app.usage.models import DEFAULT_WARN_AT_PERCENT, SpendingCap
from app.usage.service import Period, browser_seconds, cents_of

ORGANIZATION, SPACE = "organization", "space"


class SpendingCapReached(TooManyRequests):
    """A quota refusal, as a capacity one is (so a create that launches at once keeps nothing, whatever
    the generation), with the status browsers.create documents for it."""

    status = 402
    code = "spending_cap.reached"


class CreditsExhausted(TooManyRequests):
    status = 402
    code = "billing.insufficient_credits"


@dataclass(frozen=True)
class CapState:
    scope: str  # organization | space
    space_id: uuid.UUID | None
    amount_cents: int | None
    warn_at_percent: float
    used_cents: float
    period: Period

    @property
    def status(self) -> str:
        if self.amount_cents is None:
            return "disabled"
        if self.used_cents >= self.amount_cents:
            return "reached"
        if self.used_cents >= self.amount_cents * self.warn_at_percent / 100:
            return "warning"
        return "ok"


async def _state(
    s: AsyncSession, account_id: uuid.UUID, space_id: uuid.UUID | None, price: float, period: Period
) -> CapState:
    row = await s.get(SpendingCap, space_id or account_id)
    seconds = await browser_seconds(s, account_id, period, clock.now(), space_id)
    return CapState(
        scope=SPACE if space_id else ORGANIZATION,
        space_id=space_id,
        amount_cents=row.amount_cents if row else None,
        warn_at_percent=row.warn_at_percent if row else DEFAULT_WARN_AT_PERCENT,
        used_cents=cents_of(seconds, price),
        period=period,
    )


async def get(ctx: AppContext, account_id: uuid.UUID, space_id: uuid.UUID | None = None) -> CapState:
    """The account's cap (`space_id` None) or a space's, with this month's usage under it."""
    async with ctx.db.read() as s:
        return await _state(
            s, account_id, space_id, ctx.settings.price_cents_per_browser_minute, Period.month_of(clock.now())
        )


async def update(
    ctx: AppContext, account_id: uuid.UUID, space_id: uuid.UUID | None, changes: dict[str, Any]
) -> CapState:
    """Set `amount_cents` (None disables) and/or `warn_at_percent`; what `changes` omits stays. Lowering
    the amount below what is used makes the cap `reached` at once; running browsers go on."""
    for attempt in (1, 2):
        try:
            async with ctx.db.transaction() as s:
                now = clock.now()
                row = await s.get(SpendingCap, space_id or account_id, with_for_update=True)
                if row is None:
                    row = SpendingCap(
                        scope_id=space_id or account_id,
                        account_id=account_id,
                        space_id=space_id,
                        amount_cents=None,
                        warn_at_percent=DEFAULT_WARN_AT_PERCENT,
                        created_at=now,
                    )
                    s.add(row)
                for name in ("amount_cents", "warn_at_percent"):
                    if name in changes:
                        setattr(row, name, changes[name])
                row.updated_at = now
            break
        except IntegrityError:
            if attempt == 2:  # two first writes raced: the second one applies its change to the row made
                raise
    return await get(ctx, account_id, space_id)


async def refusal(
    s: AsyncSession,
    account_id: uuid.UUID,
    space_id: uuid.UUID,
    price_cents_per_minute: float,
) -> DomainError | None:
    """Why a new browser of this account and space may not start now (a cap reached), or None.
    Admission calls it inside its transaction, with the deployment's price; it never stops a running
    browser."""
    period = Period.month_of(clock.now())
    rows = (await s.execute(select(SpendingCap).where(SpendingCap.scope_id.in_((account_id, space_id))))).scalars()
    caps = {row.scope_id: row for row in rows if row.amount_cents is not None and row.account_id == account_id}
    for scope_id, scope in ((account_id, ORGANIZATION), (space_id, SPACE)):
        if scope_id not in caps:
            continue
        state = await _state(s, account_id, space_id if scope == SPACE else None, price_cents_per_minute, period)
        if state.status == "reached":
            return _reached(state)
    credit_limit = credit_limit_of(await s.get(Account, account_id))
    if credit_limit is not None:
        used = cents_of(await browser_seconds(s, account_id, period, clock.now()), price_cents_per_minute)
        if used >= credit_limit:
            return CreditsExhausted(
                f"This account used {used:.2f} of its {credit_limit:g} monthly credits; new browsers start "
                f"again on {clock.iso(period.end)} or when the limit is raised",
                details={"limit": credit_limit, "used": round(used, 4), "periodEnd": clock.iso(period.end)},
            )
    return None


def credit_limit_of(account: Account | None) -> float | None:
    """The account's `limits.monthlyCreditLimit` (credits = USD cents here), None when unset."""
    value = (account.limits or {}).get("monthlyCreditLimit") if account else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reached(state: CapState) -> SpendingCapReached:
    where = "This space's" if state.scope == SPACE else "The account's"
    return SpendingCapReached(
        f"{where} spending cap of {state.amount_cents} USD cents this month is reached ({state.used_cents:.2f} "
        f"used); running browsers go on, new ones start when the cap is raised or on {clock.iso(state.period.end)}",
        details={
            "scope": state.scope,
            "spaceId": str(state.space_id) if state.space_id else None,
            "amount": state.amount_cents,
            "used": round(state.used_cents, 4),
            "currency": "USD",
            "periodEnd": clock.iso(state.period.end),
        },
    )


@dataclass(frozen=True)
class AccountLimit:
    limit_cents: float | None  # the lower of the account's cap and its monthlyCreditLimit; None: neither
    blocked_reasons: tuple[str, ...]  # `spendingCapReached`, `insufficientCredits` (monthlyCreditLimit)


async def account_limit(ctx: AppContext, account_id: uuid.UUID, used_cents: float) -> AccountLimit:
    """What stops the account's new browsers this month, by the usage the caller measured."""
    async with ctx.db.read() as s:
        cap = await s.get(SpendingCap, account_id)
        account = await s.get(Account, account_id)
    limits, reasons = [], []
    if cap is not None and cap.amount_cents is not None:
        limits.append(float(cap.amount_cents))
        if used_cents >= cap.amount_cents:
            reasons.append("spendingCapReached")
    credit = credit_limit_of(account)
    if credit is not None:
        limits.append(credit)
        if used_cents >= credit:
            reasons.append("insufficientCredits")
    return AccountLimit(min(limits) if limits else None, tuple(reasons))

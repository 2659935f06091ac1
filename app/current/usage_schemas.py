"""Wire models of usage, spending caps and locations (the 0.3 wheel's AccountUsage, SpendingCap,
SpendingCapPatchRequest, Location, LocationsListResponse).

Credits here are USD cents of browser time (browser minutes x `BCTRL_PRICE_CENTS_PER_BROWSER_MINUTE`):
the unit spending caps count. What the platform's credits do not say (browser seconds, runs, tasks,
tokens, stored bytes) is in `measured`, a field of ours."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import page_model

# A cap above this many cents (ten billion dollars) is a typo rather than a budget.
MAX_CAP_CENTS = 10**12


class SpendingCapUpdate(RequestModel):
    amount: int | None = Field(
        default=None,
        ge=0,
        le=MAX_CAP_CENTS,
        description="Monthly limit in USD cents. Null disables the cap; zero refuses new starts. Absent: unchanged",
    )
    currency: Literal["USD"]
    warn_at_percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Ours: the share of the amount at which the status becomes `warning` (default 80). Absent: unchanged",
    )


class PeriodOut(WireModel):
    start: Timestamp
    end: Timestamp


class MoneyOut(WireModel):
    amount: float = Field(description="Accrued USD cents, fractional cents kept")
    currency: Literal["USD"] = "USD"


class SpendingCapOut(WireModel):
    object: Literal["spending_cap"] = "spending_cap"
    scope: Literal["organization", "space"]
    space_id: str | None = None
    amount: int | None
    currency: Literal["USD"] = "USD"
    warn_at_percent: float
    status: Literal["disabled", "ok", "warning", "reached"]
    period: PeriodOut
    usage: MoneyOut


class BreakdownOut(WireModel):
    ai_credits: float = 0
    browser_credits: float
    captcha_credits: float = 0
    files_credits: float = 0
    notifications_credits: float = 0
    proxy_credits: float = 0


class CreditsOut(WireModel):
    available: float
    breakdown: BreakdownOut
    effective_balance: float
    monthly_limit: float = Field(description="The account's cap in credits (USD cents); 0 when it has none")
    monthly_remaining: float
    monthly_used: float
    outstanding_debt: float = 0
    purchased_remaining: float = 0


class CycleOut(WireModel):
    started_at: Timestamp
    ends_at: Timestamp


class TokensOut(WireModel):
    input: int
    output: int
    total: int


class StorageOut(WireModel):
    files_bytes: int
    artifacts_bytes: int
    total_bytes: int


class MeasuredOut(WireModel):
    """Ours: what the credits are computed from, and the rest of this server's records for the period."""

    browser_seconds: float
    browser_minutes: float
    runs: int = Field(description="Runs started in the period")
    active_runs: int = Field(description="Browsers running now")
    tasks: int = Field(description="Tasks created in the period")
    llm_tokens: TokensOut = Field(description="Of tasks and invocations created in the period")
    storage: StorageOut = Field(description="Stored now: space files and run artifacts")
    price_cents_per_browser_minute: float


class AccountUsageOut(WireModel):
    object: Literal["account.usage"] = "account.usage"
    organization_id: str
    computed_at: Timestamp
    cycle: CycleOut
    credits: CreditsOut
    is_blocked: bool
    blocked_reasons: list[str]
    measured: MeasuredOut


class LocationOut(WireModel):
    object: Literal["location"] = "location"
    id: str
    name: str
    status: Literal["available", "unavailable"]
    home_regions: list[str]
    # Ours, with a driver that places browsers on nodes (BCTRL_DRIVER=swarm); absent otherwise.
    nodes: int | None = Field(default=None, description="Nodes that may run browsers here now")
    slots: int | None = Field(default=None, description="Browsers those nodes hold when empty")
    free_slots: int | None = Field(default=None, description="Browsers they can take now")


LocationPage = page_model(LocationOut)

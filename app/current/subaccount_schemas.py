"""Wire models of subaccounts (the 0.3 wheel's `Subaccount`, `SubaccountLimits`, `SubaccountUsage`,
`SubaccountArchiveResponse`, the create and update bodies)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.current.schemas import page_model

SubaccountName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Field(pattern=r"\S")
]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200), Field(pattern=r"^\S(.*\S)?$")]
SubaccountStatus = Literal["active", "archived"]


class LimitsIn(RequestModel):
    """Quotas; a null removes one (the deployment's default applies). Admission refuses a new browser
    beyond `maxActiveRuns`; `monthlyCreditLimit` is in browser minutes a calendar month (UTC)."""

    max_active_runs: int | None = Field(default=None, ge=0, le=100_000)
    max_spaces: int | None = Field(default=None, ge=0, le=100_000)
    monthly_credit_limit: float | None = Field(default=None, ge=0, le=1e12)


class SubaccountCreate(RequestModel):
    name: SubaccountName
    external_id: ExternalId | None = None
    limits: LimitsIn | None = None
    metadata: JsonObject | None = Field(default=None, description="Stored as given, returned as stored")


class SubaccountUpdate(RequestModel):
    name: SubaccountName | None = None
    external_id: ExternalId | None = Field(default=None, description="null clears it")
    limits: LimitsIn | None = Field(default=None, description="Merged: a null inside removes a limit; null all")
    metadata: JsonObject | None = Field(default=None, description="Replaced; null clears it")


class LimitsOut(WireModel):
    max_active_runs: int | None = None
    max_spaces: int | None = None
    monthly_credit_limit: float | None = None


class UsagePeriodOut(WireModel):
    started_at: Timestamp
    ends_at: Timestamp


class UsageCreditsOut(WireModel):
    used: float = Field(description="Browser minutes this period")
    limit: float | None = None


class UsageRunsOut(WireModel):
    active: int
    limit: int | None = None


class UsageSpacesOut(WireModel):
    used: int
    limit: int | None = None


class SubaccountUsageOut(WireModel):
    subaccount_id: str
    computed_at: Timestamp
    period: UsagePeriodOut
    credits: UsageCreditsOut
    runs: UsageRunsOut
    spaces: UsageSpacesOut


class SubaccountOut(WireModel):
    id: str
    object: Literal["subaccount"] = "subaccount"
    name: str
    status: SubaccountStatus
    external_id: str | None = None
    metadata: JsonObject | None = None
    limits: LimitsOut
    default_space_id: str
    usage: SubaccountUsageOut | None = None
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


class SubaccountArchiveOut(WireModel):
    id: str
    object: Literal["subaccount"] = "subaccount"
    archived: bool = True


SubaccountPage = page_model(SubaccountOut)
SubaccountUsagePage = page_model(SubaccountUsageOut)

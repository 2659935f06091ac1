"""Subaccounts (current generation): child accounts of an organization, each its own tenant.

A parent's key acts in one with `BCTRL-Subaccount-Id` (app/accounts/auth.py); these routes manage
them and are the organization's alone: a request acting in a subaccount (its own key, or the header)
gets 403 `subaccounts.access_denied`. `{subaccount_id}` is an id or a name; one that is not a
subaccount of the caller is 404 `subaccount.not_found`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from app.accounts import tenants
from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.accounts.models import Account
from app.accounts.service import Principal
from app.core.context import AppContext
from app.core.errors import DomainError
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.schemas import Order
from app.current.subaccount_schemas import (
    LimitsOut,
    SubaccountArchiveOut,
    SubaccountCreate,
    SubaccountOut,
    SubaccountPage,
    SubaccountStatus,
    SubaccountUpdate,
    SubaccountUsageOut,
    SubaccountUsagePage,
    UsageCreditsOut,
    UsagePeriodOut,
    UsageRunsOut,
    UsageSpacesOut,
)
from app.runtimes import lifecycle
from app.spaces import service as spaces
from app.spaces.models import Space
from app.usage import service as usage

router = APIRouter(prefix="/v1/subaccounts", tags=["subaccounts"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
Include = Annotated[list[Literal["usage"]] | None, Query(description="`usage`: inline this period's usage")]


def organization(p: PrincipalDep) -> Principal:
    if p.in_subaccount:
        raise DomainError(
            "Subaccounts are managed with the organization's key, without BCTRL-Subaccount-Id",
            code="subaccounts.access_denied",
            status=403,
            details={"subaccountId": str(p.account_id)},
        )
    return p


Organization = Annotated[Principal, Depends(organization)]


async def path_subaccount(ctx: CtxDep, p: Organization, subaccount_id: str) -> Account:
    return await tenants.find(ctx.db, p.account_id, subaccount_id)


PathSubaccount = Annotated[Account, Depends(path_subaccount)]


# --- shapes ---------------------------------------------------------------------------------------


async def usage_of(ctx: AppContext, accounts: list[Account]) -> dict[uuid.UUID, usage.Usage]:
    return {a.id: await usage.usage_of(ctx, a.id) for a in accounts}


def usage_out(account: Account, used: usage.Usage) -> SubaccountUsageOut:
    """Credits are the same USD cents as /v1/usage and the spending caps (browser minutes x the price)."""
    limits = account.limits or {}
    return SubaccountUsageOut(
        subaccount_id=str(account.id),
        computed_at=used.computed_at,
        period=UsagePeriodOut(started_at=used.period.start, ends_at=used.period.end),
        credits=UsageCreditsOut(used=round(used.cents, 3), limit=limits.get("monthlyCreditLimit")),
        runs=UsageRunsOut(active=used.active_runs, limit=limits.get("maxActiveRuns")),
        spaces=UsageSpacesOut(used=used.spaces, limit=limits.get("maxSpaces")),
    )


async def _default_spaces(ctx: AppContext, p: Principal, accounts: list[Account]) -> dict[uuid.UUID, uuid.UUID]:
    ids = [a.id for a in accounts]
    async with ctx.db.read() as s:
        found = dict(
            (
                await s.execute(
                    select(Space.account_id, Space.id).where(Space.account_id.in_(ids), Space.is_default.is_(True))
                )
            ).all()
        )
    for account in accounts:
        if account.id not in found:  # made with the subaccount; a row from before that is given one now
            found[account.id] = (await spaces.default_space(ctx, Principal(account.id, p.key_id))).id
    return found


async def shaped(ctx: AppContext, p: Principal, accounts: list[Account], include_usage: bool) -> list[SubaccountOut]:
    defaults = await _default_spaces(ctx, p, accounts)
    used = await usage_of(ctx, accounts) if include_usage else {}
    return [
        SubaccountOut(
            id=str(a.id),
            name=a.name,
            status=a.status,
            external_id=a.external_id,
            metadata=a.metadata_,
            limits=LimitsOut.model_validate(a.limits or {}),
            default_space_id=str(defaults[a.id]),
            usage=usage_out(a, used[a.id]) if a.id in used else None,
            created_at=a.created_at,
            updated_at=a.updated_at or a.created_at,
            archived_at=a.archived_at,
        )
        for a in accounts
    ]


async def one(ctx: AppContext, p: Principal, account: Account, include: list[str] | None = None) -> SubaccountOut:
    return (await shaped(ctx, p, [account], bool(include)))[0]


# --- routes ---------------------------------------------------------------------------------------


@router.get("", response_model=SubaccountPage, responses=errors(400, 403))
async def list_subaccounts(
    ctx: CtxDep,
    p: Organization,
    page: Page,
    include: Include = None,
    order: Annotated[Order, Query(description="By creation; newest first by default")] = "desc",
    status: Annotated[SubaccountStatus | None, Query()] = None,
    external_id: Annotated[str | None, Query(alias="externalId", max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="A part of the name or the externalId")] = None,
) -> SubaccountPage:
    """The organization's subaccounts, archived ones included unless `status` says otherwise."""
    rows, cursor = await tenants.list_subaccounts(
        ctx.db, p.account_id, page, status=status, external_id=external_id, q=q, newest_first=order == "desc"
    )
    data = await shaped(ctx, p, rows, bool(include))
    return SubaccountPage(data=data, has_more=cursor is not None, next_cursor=cursor)


@router.get("/usage", response_model=SubaccountUsagePage, responses=errors(400, 403))
async def list_subaccount_usage(
    ctx: CtxDep,
    p: Organization,
    page: Page,
    order: Annotated[Order, Query(description="By the subaccount's creation; newest first by default")] = "desc",
) -> SubaccountUsagePage:
    """This calendar month's usage (UTC) of each subaccount: `credits` in USD cents of browser time (as
    /v1/usage counts them), active runs, spaces, each beside its limit."""
    rows, cursor = await tenants.list_subaccounts(ctx.db, p.account_id, page, newest_first=order == "desc")
    used = await usage_of(ctx, rows)
    return SubaccountUsagePage(
        data=[usage_out(a, used[a.id]) for a in rows], has_more=cursor is not None, next_cursor=cursor
    )


@router.post("", status_code=201, response_model=SubaccountOut, responses=errors(400, 403, 409))
async def create_subaccount(
    ctx: CtxDep, p: Organization, body: SubaccountCreate, idem: IdempotencyDep
) -> SubaccountOut:
    """A new tenant with its own default space. A name or an externalId another active subaccount has is
    409 `subaccount.conflict` (paths accept a name in place of the id)."""

    async def make() -> SubaccountOut:
        spec = tenants.SubaccountSpec(
            name=body.name,
            external_id=body.external_id,
            limits=body.limits.model_dump(by_alias=True, exclude_unset=True) if body.limits else None,
            metadata=body.metadata,
        )
        account = await tenants.create(ctx.db, p.account_id, spec)
        await spaces.default_space(ctx, Principal(account.id, p.key_id))
        return await one(ctx, p, account)

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.get("/{subaccount_id}", response_model=SubaccountOut, responses=errors(403, 404))
async def get_subaccount(ctx: CtxDep, p: Organization, sub: PathSubaccount, include: Include = None) -> SubaccountOut:
    return await one(ctx, p, sub, include)


@router.patch("/{subaccount_id}", response_model=SubaccountOut, responses=errors(400, 403, 404, 409))
async def update_subaccount(
    ctx: CtxDep, p: Organization, sub: PathSubaccount, body: SubaccountUpdate, idem: IdempotencyDep
) -> SubaccountOut:
    """Name, externalId (null clears it), metadata (replaced; null clears it), limits (merged: a null
    inside removes one). An archived subaccount is 409 `subaccount.archived`."""
    changes = body.model_dump(by_alias=True, exclude_unset=True)
    if "limits" in changes and body.limits is not None:
        changes["limits"] = body.limits.model_dump(by_alias=True, exclude_unset=True)

    async def make() -> SubaccountOut:
        return await one(ctx, p, await tenants.update(ctx.db, sub, changes))

    return await idem.once(make, {"subaccountId": str(sub.id), **body.model_dump(mode="json", exclude_unset=True)})


@router.post("/{subaccount_id}/archive", response_model=SubaccountArchiveOut, responses=errors(403, 404))
async def archive_subaccount(ctx: CtxDep, p: Organization, sub: PathSubaccount) -> SubaccountArchiveOut:
    """Archive: its keys stop working at once, its running browsers are stopped (their runs, events and
    files are kept and readable with BCTRL-Subaccount-Id), nothing new can start in it. Archiving an
    archived subaccount answers the same."""
    await tenants.archive(ctx.db, sub)
    # Archive is repeatable: a browser a crash left running is stopped by the next archive call.
    await lifecycle.stop_all(ctx, sub.id, "subaccount archived")
    return SubaccountArchiveOut(id=str(sub.id))

"""Usage, spending caps and locations (current generation): `GET /v1/usage`, `/v1/account/spending-cap`,
`/v1/spaces/{spaceId}/spending-cap` (get, update) and `GET /v1/locations`.

A cap is USD cents a UTC calendar month; usage is browser minutes x `BCTRL_PRICE_CENTS_PER_BROWSER_MINUTE`.
A cap reached refuses new starts (402 `spending_cap.reached`) and never stops a running browser."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, encode_cursor, page_params
from app.core.schemas import errors
from app.current.schemas import Order
from app.current.usage_schemas import (
    AccountUsageOut,
    BreakdownOut,
    CreditsOut,
    CycleOut,
    LocationOut,
    LocationPage,
    MeasuredOut,
    MoneyOut,
    PeriodOut,
    SpendingCapOut,
    SpendingCapUpdate,
    StorageOut,
    TokensOut,
)
from app.spaces.paths import PathSpace
from app.usage import caps, locations
from app.usage import service as usage

router = APIRouter(tags=["usage"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]


def cap_out(state: caps.CapState) -> SpendingCapOut:
    return SpendingCapOut(
        scope=state.scope,
        space_id=str(state.space_id) if state.space_id else None,
        amount=state.amount_cents,
        warn_at_percent=state.warn_at_percent,
        status=state.status,
        period=PeriodOut(start=state.period.start, end=state.period.end),
        usage=MoneyOut(amount=round(state.used_cents, 4)),
    )


def _changes(body: SpendingCapUpdate) -> dict:
    given = body.model_fields_set
    changes = {"amount_cents": body.amount} if "amount" in given else {}
    if "warn_at_percent" in given and body.warn_at_percent is not None:
        changes["warn_at_percent"] = body.warn_at_percent
    return changes


@router.get("/v1/usage", response_model=AccountUsageOut, responses=errors(403))
async def get_usage(ctx: CtxDep, p: PrincipalDep) -> AccountUsageOut:
    """This UTC month's usage of the account: credits are USD cents of browser time; `measured` says
    what they are computed from (browser seconds, runs, tasks, LLM tokens, stored bytes)."""
    used = await usage.usage_of(ctx, p.account_id)
    limit = await caps.account_limit(ctx, p.account_id, used.cents)
    remaining = max(limit.limit_cents - used.cents, 0.0) if limit.limit_cents is not None else 0.0
    return AccountUsageOut(
        organization_id=str(p.account_id),
        computed_at=used.computed_at,
        cycle=CycleOut(started_at=used.period.start, ends_at=used.period.end),
        credits=CreditsOut(
            available=remaining,
            breakdown=BreakdownOut(browser_credits=round(used.cents, 4)),
            effective_balance=remaining,
            monthly_limit=limit.limit_cents or 0.0,
            monthly_remaining=remaining,
            monthly_used=round(used.cents, 4),
        ),
        is_blocked=bool(limit.blocked_reasons),
        blocked_reasons=list(limit.blocked_reasons),
        measured=MeasuredOut(
            browser_seconds=round(used.browser_seconds, 3),
            browser_minutes=round(used.browser_seconds / 60, 4),
            runs=used.runs,
            active_runs=used.active_runs,
            tasks=used.tasks,
            llm_tokens=TokensOut(
                input=used.input_tokens, output=used.output_tokens, total=used.input_tokens + used.output_tokens
            ),
            storage=StorageOut(
                files_bytes=used.files_bytes, artifacts_bytes=used.artifacts_bytes, total_bytes=used.storage_bytes
            ),
            price_cents_per_browser_minute=ctx.settings.price_cents_per_browser_minute,
        ),
    )


async def _update(ctx, account_id: uuid.UUID, space_id: uuid.UUID | None, body: SpendingCapUpdate, idem):
    async def make() -> SpendingCapOut:
        return cap_out(await caps.update(ctx, account_id, space_id, _changes(body)))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.get("/v1/account/spending-cap", response_model=SpendingCapOut, responses=errors(403))
async def get_account_cap(ctx: CtxDep, p: PrincipalDep) -> SpendingCapOut:
    """The account's monthly cap in USD cents and this month's usage under it (all its spaces)."""
    return cap_out(await caps.get(ctx, p.account_id))


@router.patch("/v1/account/spending-cap", response_model=SpendingCapOut, responses=errors(400, 403, 409))
async def update_account_cap(
    ctx: CtxDep, p: PrincipalDep, body: SpendingCapUpdate, idem: IdempotencyDep
) -> SpendingCapOut:
    """Set the account's cap (`amount` null disables it, 0 refuses every new start). Lowered below what
    is used, it is `reached` at once: new starts are refused, running browsers go on."""
    return await _update(ctx, p.account_id, None, body, idem)


@router.get("/v1/spaces/{space_id}/spending-cap", response_model=SpendingCapOut, responses=errors(403))
async def get_space_cap(ctx: CtxDep, p: PrincipalDep, space: PathSpace) -> SpendingCapOut:
    """The space's monthly cap and this month's usage of its browsers; the account's cap applies too."""
    return cap_out(await caps.get(ctx, p.account_id, space.id))


@router.patch("/v1/spaces/{space_id}/spending-cap", response_model=SpendingCapOut, responses=errors(400, 403, 409))
async def update_space_cap(
    ctx: CtxDep, p: PrincipalDep, space: PathSpace, body: SpendingCapUpdate, idem: IdempotencyDep
) -> SpendingCapOut:
    """Set this space's cap; other spaces are unaffected, and the account's cap still applies here."""
    return await _update(ctx, p.account_id, space.id, body, idem)


@router.get("/v1/locations", response_model=LocationPage, responses=errors(403))
async def list_locations(
    ctx: CtxDep,
    _p: PrincipalDep,
    page: Page,
    order: Annotated[Order, Query(description="By id (the catalogue has no other order here). Defaults to desc.")] = (
        "desc"
    ),
) -> LocationPage:
    """Where browsers can run here: this host, with the deployment's driver (id `local`), or with the
    Swarm driver one location per node label value, with the nodes' free capacity."""
    found = sorted(await locations.offered(ctx), key=lambda loc: loc.id, reverse=order == "desc")
    if isinstance(page.after, str):
        found = [loc for loc in found if (loc.id < page.after if order == "desc" else loc.id > page.after)]
    items = found[: page.limit]
    more = len(found) > page.limit
    return LocationPage(
        data=[
            LocationOut(
                id=loc.id,
                name=loc.name,
                status=loc.status,
                home_regions=list(loc.home_regions),
                nodes=loc.nodes,
                slots=loc.slots,
                free_slots=loc.free,
            )
            for loc in items
        ],
        has_more=more,
        next_cursor=encode_cursor(items[-1].id) if more else None,
    )

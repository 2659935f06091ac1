"""`/v1/drains`: export the account's events to an https receiver, an OTLP collector or an S3/R2 bucket
(app/drains). Also `words()`: how the pump shapes what it exports, in this generation's words (the
`Event` model; categories; a finished run's OpenTelemetry spans), handed to it by the assembly."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response

from app.accounts import scopes
from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core import clock
from app.core.context import AppContext
from app.core.errors import Conflict, NotFound
from app.core.idempotency import fingerprint, respond
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current import event_shapes, traces
from app.current.drain_schemas import (
    DrainCreate,
    DrainCreatedOut,
    DrainDeletedOut,
    DrainOut,
    DrainPage,
    DrainTestOut,
    DrainUpdate,
)
from app.current.schemas import Order
from app.drains import pump
from app.drains import service as drains
from app.drains.models import Drain
from app.runs import trace
from app.runs.models import Run, RunEvent

router = APIRouter(prefix="/v1/drains", tags=["drains"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]


async def path_drain(ctx: CtxDep, p: PrincipalDep, drain_id: str) -> Drain:
    return await drains.get(ctx, p, drain_id)


PathDrain = Annotated[Drain, Depends(path_drain)]


def _references(value: Any) -> bool:
    """Whether a destination (as sent or as stored) names a vault secret anywhere."""
    if isinstance(value, str):
        return value.startswith("secret:")
    if isinstance(value, dict):
        return any(_references(v) for v in value.values())
    return False


def check_secret_use(p, sent: dict[str, Any] | None, stored: dict[str, Any] | None = None) -> None:
    """A destination set by this request that names secrets, or that replaces one that does (its
    credentials would go to the new address), needs a key that may use the vault (403 otherwise)."""
    if sent is not None and (_references(sent) or _references(stored)):
        scopes.check_secret_use(p.scopes)


@router.get("", response_model=DrainPage, responses=errors(400, 403))
async def list_drains(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    order: Annotated[Order, Query(description="Order by createdAt and ID. Defaults to desc.")] = "desc",
) -> DrainPage:
    """The account's drains with their delivery status."""
    rows, cursor = await drains.list_drains(ctx, p.account_id, page, newest_first=order == "desc")
    return DrainPage(
        data=[DrainOut.of(r, p.subaccount_id) for r in rows], has_more=cursor is not None, next_cursor=cursor
    )


@router.post("", status_code=201, response_model=DrainCreatedOut, responses=errors(400, 403, 409, 429))
async def create_drain(
    ctx: CtxDep, p: PrincipalDep, body: DrainCreate, idem: IdempotencyDep, response: Response
) -> DrainCreatedOut:
    """A drain exporting the events committed from now on, in batches and in commit order, retried with
    backoff until delivered. An https drain's signing secret is in this answer only (a replay with the
    same Idempotency-Key answers a fresh one: the secret is never stored where a replay could read it).
    Credentials are vault references (400 `drain.destination_invalid` otherwise, or when the secret does
    not exist, or when the destination's address may not be reached)."""

    check_secret_use(p, body.model_dump(mode="json", by_alias=True)["destination"])

    async def make() -> DrainCreatedOut:
        row, secret = await drains.create(ctx, p, body.spec())
        return DrainCreatedOut.made(row, secret, p.subaccount_id)

    if idem.key is None:
        return await make()
    made: DrainCreatedOut | None = None

    async def first() -> tuple[int, dict]:
        nonlocal made
        made = await make()
        return idem.status, {**made.model_dump(mode="json"), "secret": None}  # what a replay may know

    request = body.model_dump(mode="json")
    answer = await respond(idem.db, idem.account_id, idem.key, fingerprint(idem.method, idem.path, request), first)
    if made is not None:
        return made
    stored = orjson.loads(answer.body)
    try:
        row = await drains.get(ctx, p, stored["id"])
    except NotFound:
        raise Conflict(
            "The drain this request created has been deleted since; send a new Idempotency-Key for a new drain",
            code="resource.conflict",
            details={"drainId": stored["id"], "idempotencyKey": idem.key},
        ) from None
    row, secret = await drains.rotate_secret(ctx, row)
    response.headers["Idempotency-Replayed"] = "true"
    return DrainCreatedOut.made(row, secret, p.subaccount_id)


@router.get("/{drain_id}", response_model=DrainOut, responses=errors(403, 404))
async def get_drain(p: PrincipalDep, row: PathDrain) -> DrainOut:
    """A drain with its delivery status: last delivery, last error, events and bytes sent."""
    return DrainOut.of(row, p.subaccount_id)


@router.patch("/{drain_id}", response_model=DrainOut, responses=errors(400, 403, 404, 409, 429))
async def update_drain(
    ctx: CtxDep, p: PrincipalDep, row: PathDrain, body: DrainUpdate, idem: IdempotencyDep
) -> DrainOut:
    """Change the destination (of the same type: 400 `drain.destination_type_changed` otherwise), the
    categories, the name or `enabled`. A disabled drain keeps its place and resumes from it. An otlp
    header sent back as `[redacted]` keeps its stored value; `headers` left out keeps them all."""

    check_secret_use(
        p, body.model_dump(mode="json", by_alias=True, exclude_unset=True).get("destination"), row.destination
    )

    async def make() -> DrainOut:
        return DrainOut.of(await drains.update(ctx, row, body.changes()), p.subaccount_id)

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{drain_id}", response_model=DrainDeletedOut, responses=errors(403, 404, 409, 429))
async def delete_drain(ctx: CtxDep, row: PathDrain, idem: IdempotencyDep) -> DrainDeletedOut:
    """Delete the drain; events not yet sent are not exported."""

    async def make() -> DrainDeletedOut:
        return DrainDeletedOut(id=str(await drains.delete(ctx, row)))

    return await idem.once(make, {"drainId": str(row.id)})


@router.post("/{drain_id}/test", response_model=DrainTestOut, responses=errors(403, 404, 409, 429))
async def test_drain(ctx: CtxDep, row: PathDrain, idem: IdempotencyDep) -> DrainTestOut:
    """Send one synthetic event (`drain.test`) to the destination now and say how it went (`ok`, the
    destination's status, the error). The drain's place and figures do not move."""

    async def make() -> DrainTestOut:
        result = await drains.test(ctx, row)
        return DrainTestOut(
            drain_id=str(row.id),
            ok=result.ok,
            response_status=result.status,
            error=result.error,
            bytes_sent=result.bytes,
            duration_ms=result.duration_ms,
        )

    return await idem.once(make, {"drainId": str(row.id), "test": True})


# --- what the pump exports, in this generation's words ---------------------------------------------

_ALL = frozenset(drains.CATEGORIES)
RUN_ENDS = ("runtime.stopped", "runtime.failed")


def _categories(wanted: list[str]) -> tuple[str, ...] | None:
    if _ALL <= set(wanted):
        return None
    return event_shapes.event_query(category=wanted).categories or ()


async def _spans(ctx: AppContext, event: RunEvent) -> list[dict[str, Any]]:
    """A run's spans when its end is exported (all finished by then), as OpenTelemetry spans."""
    if event.type not in RUN_ENDS or event.run_id is None:
        return []
    async with ctx.db.read() as s:
        run = await s.get(Run, event.run_id)
    if run is None:
        return []
    now = clock.now()
    built = await trace.spans_of(ctx, run)
    trace_id = uuid.UUID(str(run.id)).hex
    return [
        {**traces.span_out(span, now).model_dump(mode="json"), "traceId": trace_id}
        for span in built.spans
        if span.finished_at is not None
    ]


def words() -> pump.Words:
    return pump.Words(event=event_shapes.event_dict, categories=_categories, spans=_spans)


def pump_for(ctx: AppContext) -> pump.DrainPump:
    """The drain pump of this process, exporting in this generation's words (the assembly starts it)."""
    return pump.DrainPump(ctx, words())

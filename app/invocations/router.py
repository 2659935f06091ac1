"""Invocation routes: the seed shape (nested under a space's runtime, `/v1/invocations/{id}`) and the
flat one (`/v1/runtimes/{id}/invocations` with `action`, `/v1/runs/{id}/invocations`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from app.accounts.auth import CtxDep, PrincipalDep
from app.core.errors import InvalidRequest
from app.core.paging import PageParams, page_params
from app.core.schemas import RequestModel, errors
from app.invocations import service
from app.invocations.paths import PathInvocation
from app.invocations.schemas import (
    FlatInvocation,
    InvocationList,
    InvocationOut,
    SeedInvocation,
    WaitOut,
    normalise_flat,
    normalise_seed,
)
from app.runs.paths import PathRun
from app.runtimes.paths import FlatRuntime, SeedRuntime

router = APIRouter(tags=["invocations"])


MAX_WAIT_MS = 60_000


class WaitIn(RequestModel):
    # Longer asks are served the maximum and told so (the SDK loops long polls anyway), not refused.
    timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description=f"Waits at most {MAX_WAIT_MS} ms; more is clamped "
        "(`timeoutClamped: true`, `timeoutMs` says what was used)",
    )


Page = Annotated[PageParams, Depends(page_params)]


@router.post(
    "/v1/spaces/{space_id}/runtimes/{runtime_id}/invocations",
    status_code=202,
    response_model=InvocationOut,
    responses=errors(400, 404, 409),
)
async def create_seed(ctx: CtxDep, p: PrincipalDep, runtime: SeedRuntime, body: SeedInvocation) -> InvocationOut:
    """Queue hosted AI work on the runtime (202). It holds the runtime's controller lock until it ends:
    409 `runtime.controller_busy` while a CDP lease, a live input viewer or another invocation controls it."""
    try:
        provider, method, request = normalise_seed(body)
    except ValueError:
        raise InvalidRequest(
            "Give `method` (act, observe, extract, agent) or `operation: agent.execute`",
            details={"fields": [{"field": "method", "message": "required"}]},
        ) from None
    return InvocationOut.of(await service.create(ctx, p, runtime, provider, method, request))


@router.get(
    "/v1/spaces/{space_id}/runtimes/{runtime_id}/invocations", response_model=InvocationList, responses=errors(400, 404)
)
async def list_seed(ctx: CtxDep, p: PrincipalDep, runtime: SeedRuntime, page: Page) -> InvocationList:
    return InvocationList.of(*await service.list_for(ctx, p, page, runtime_id=runtime.id))


@router.post(
    "/v1/runtimes/{runtime_id}/invocations",
    status_code=202,
    response_model=InvocationOut,
    responses=errors(400, 404, 409),
)
async def create_flat(ctx: CtxDep, p: PrincipalDep, runtime: FlatRuntime, body: FlatInvocation) -> InvocationOut:
    provider, method, request = normalise_flat(body)
    return InvocationOut.of(await service.create(ctx, p, runtime, provider, method, request))


@router.get("/v1/runs/{run_id}/invocations", response_model=InvocationList, responses=errors(400, 404))
async def list_for_run(ctx: CtxDep, p: PrincipalDep, run: PathRun, page: Page) -> InvocationList:
    return InvocationList.of(*await service.list_for(ctx, p, page, run_id=run.id))


@router.get("/v1/invocations/{invocation_id}", response_model=InvocationOut, responses=errors(404))
async def get_invocation(row: PathInvocation) -> InvocationOut:
    return InvocationOut.of(row)


@router.post("/v1/invocations/{invocation_id}/wait", response_model=WaitOut, responses=errors(400, 404))
async def wait_invocation(ctx: CtxDep, row: PathInvocation, body: WaitIn | None = None) -> WaitOut:
    """Long-poll up to `timeoutMs` (at most 60 s; a longer ask waits 60 s and says `timeoutClamped`)."""
    asked = (body or WaitIn()).timeout_ms
    used = min(asked, MAX_WAIT_MS)
    row, timed_out = await service.wait(ctx, row, used)
    return WaitOut(
        invocation=InvocationOut.of(row),
        timed_out=timed_out,
        wait_status="timeout" if timed_out else "completed",
        timeout_ms=used,
        timeout_clamped=used < asked,
    )


@router.post("/v1/invocations/{invocation_id}/cancel", response_model=InvocationOut, responses=errors(404))
async def cancel_invocation(ctx: CtxDep, row: PathInvocation) -> InvocationOut:
    return InvocationOut.of(await service.cancel(ctx, row))


routers = (router,)

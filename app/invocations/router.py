"""Invocation routes: the seed shape (nested under a space's runtime, `/v1/invocations/{id}`) and the
flat one (`/v1/runtimes/{id}/invocations` with `action`, `/v1/runs/{id}/invocations`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from app.accounts.auth import CtxDep, PrincipalDep
from app.core.errors import InvalidRequest
from app.core.paging import PageParams, page_params
from app.core.responses import JSONResponse
from app.core.schemas import RequestModel, errors
from app.invocations import service
from app.invocations.schemas import FlatInvocation, SeedInvocation, normalise_flat, normalise_seed

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


def _page(rows, cursor) -> JSONResponse:
    data = [service.wire(r) for r in rows]
    return JSONResponse({"data": data, "invocations": data, "nextCursor": cursor})


@router.post(
    "/v1/spaces/{space_id}/runtimes/{runtime_id}/invocations", status_code=202, responses=errors(400, 404, 409)
)
async def create_seed(ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str, body: SeedInvocation):
    """Queue hosted AI work on the runtime (202). It holds the runtime's controller lock until it ends:
    409 `runtime.controller_busy` while a CDP lease, a live input viewer or another invocation controls it."""
    try:
        provider, method, request = normalise_seed(body)
    except ValueError:
        raise InvalidRequest(
            "Give `method` (act, observe, extract, agent) or `operation: agent.execute`",
            details={"fields": [{"field": "method", "message": "required"}]},
        ) from None
    runtime = await service.runtime_of(ctx, p, runtime_id, space_id)
    return JSONResponse(service.wire(await service.create(ctx, p, runtime, provider, method, request)), status_code=202)


@router.get("/v1/spaces/{space_id}/runtimes/{runtime_id}/invocations", responses=errors(400, 404))
async def list_seed(
    ctx: CtxDep, p: PrincipalDep, space_id: str, runtime_id: str, page: Annotated[PageParams, Depends(page_params)]
):
    runtime = await service.runtime_of(ctx, p, runtime_id, space_id)
    return _page(*await service.list_for(ctx, p, page, runtime_id=runtime.id))


@router.post("/v1/runtimes/{runtime_id}/invocations", status_code=202, responses=errors(400, 404, 409))
async def create_flat(ctx: CtxDep, p: PrincipalDep, runtime_id: str, body: FlatInvocation):
    provider, method, request = normalise_flat(body)
    runtime = await service.runtime_of(ctx, p, runtime_id)
    return JSONResponse(service.wire(await service.create(ctx, p, runtime, provider, method, request)), status_code=202)


@router.get("/v1/runs/{run_id}/invocations", responses=errors(400, 404))
async def list_for_run(ctx: CtxDep, p: PrincipalDep, run_id: str, page: Annotated[PageParams, Depends(page_params)]):
    run = await service.run_for(ctx, p, run_id)
    return _page(*await service.list_for(ctx, p, page, run_id=run.id))


@router.get("/v1/invocations/{invocation_id}", responses=errors(404))
async def get_invocation(ctx: CtxDep, p: PrincipalDep, invocation_id: str):
    return JSONResponse(service.wire(await service.get(ctx, p, invocation_id)))


@router.post("/v1/invocations/{invocation_id}/wait", responses=errors(400, 404))
async def wait_invocation(ctx: CtxDep, p: PrincipalDep, invocation_id: str, body: WaitIn | None = None):
    """Long-poll up to `timeoutMs` (at most 60 s; a longer ask waits 60 s and says `timeoutClamped`)."""
    asked = (body or WaitIn()).timeout_ms
    used = min(asked, MAX_WAIT_MS)
    row, timed_out = await service.wait(ctx, p, invocation_id, used)
    return JSONResponse(
        {
            "invocation": service.wire(row),
            "timedOut": timed_out,
            "waitStatus": "timeout" if timed_out else "completed",
            "timeoutMs": used,
            "timeoutClamped": used < asked,
        }
    )


@router.post("/v1/invocations/{invocation_id}/cancel", responses=errors(404))
async def cancel_invocation(ctx: CtxDep, p: PrincipalDep, invocation_id: str):
    return JSONResponse(service.wire(await service.cancel(ctx, p, invocation_id)))


routers = (router,)

"""Liveness and readiness probes (no authentication: load balancers call them)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from app.accounts.auth import CtxDep
from app.core.errors import RETRY_AFTER_SECONDS
from app.core.responses import JSONResponse
from app.core.schemas import WireModel

PROBE_TIMEOUT_SECONDS = 3.0

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


class Readiness(WireModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description="Each dependency: `ok`, or `unreachable: <reason>`")
    unavailable: list[str] | None = Field(default=None, description="What does not answer (only when unavailable)")


_NOT_READY = {
    200: {"model": Readiness, "description": "Everything the server needs answers"},
    503: {
        "description": "Something the server needs does not answer; `checks` names it",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "checks"],
                    "properties": {
                        "status": {"const": "unavailable"},
                        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                        "unavailable": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        },
    },
}


@router.get("/readyz", responses=_NOT_READY)
async def readyz(ctx: CtxDep) -> JSONResponse:
    """The database and the lock backend answer; 503 (with Retry-After) names what does not."""
    probes = {"database": ctx.db.ping, **ctx.readiness_probes}
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            # Bounded: a backend that hangs is as unready as one that refuses.
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"
    down = [name for name, state in checks.items() if state != "ok"]
    if not down:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse(
        {"status": "unavailable", "checks": checks, "unavailable": down},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )

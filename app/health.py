"""Liveness and readiness probes (no authentication: load balancers call them)."""

from __future__ import annotations

from fastapi import APIRouter
from app.core.responses import JSONResponse

from app.core.auth import CtxDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


_NOT_READY = {503: {"description": "Something the server needs does not answer; `checks` names it",
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status", "checks"],
                        "properties": {"status": {"const": "unavailable"},
                                       "checks": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}


@router.get("/readyz", responses=_NOT_READY)
async def readyz(ctx: CtxDep) -> JSONResponse:
    """The database and the lock backend answer; 503 names what does not."""
    checks: dict[str, str] = {}
    try:
        await ctx.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    for name, probe in ctx.readiness_probes.items():
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                          status_code=200 if ready else 503)

"""`connections.webdriverUrl`: this server speaks CDP only, so the URL answers a documented refusal.

The contract requires the field (docs/decisions.md), so the browser shape keeps it. Only the current
generation hands the URL out, and a WebDriver client following it sends no `BCTRL-Version`: the refusal
is in the current generation's envelope (`{"error": {"code", "message", ...}}`) whatever the request says.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.core import generation
from app.core.errors import DomainError

router = APIRouter(prefix="/v1/webdriver", tags=["browsers (current)"])


class WebDriverUnavailable(DomainError):
    status = 501
    code = "runtime.webdriver_unavailable"


# Out of /openapi.json: it has no success response to describe (test_openapi requires one per route).
@router.api_route("/{run_id}/{rest:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def webdriver(run_id: str, rest: str) -> None:
    # The error handler builds the envelope from the request's generation; this request's context only
    # (the middleware restores the generation it set when the request ends).
    generation.set_current(generation.CURRENT)
    raise WebDriverUnavailable(
        "This server offers no WebDriver endpoint; connect with CDP (connections.cdpUrl) instead",
        details={"runId": run_id[:64]},
    )

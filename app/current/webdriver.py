"""`connections.webdriverUrl`: this server speaks CDP only, so the URL answers a documented refusal."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.errors import DomainError
from app.core.schemas import errors

router = APIRouter(prefix="/v1/webdriver", tags=["browsers (current)"])


class WebDriverUnavailable(DomainError):
    status = 501
    code = "runtime.webdriver_unavailable"


@router.api_route("/{run_id}/{rest:path}", methods=["GET", "POST", "DELETE"], responses=errors(501))
async def webdriver(run_id: str, rest: str) -> None:
    raise WebDriverUnavailable(
        "This server offers no WebDriver endpoint; connect with CDP (connections.cdpUrl) instead",
        details={"runId": run_id[:64]},
    )

"""create_app(): the FastAPI factory, its middleware and the router list (the assembly is app/lifespan.py)."""

from __future__ import annotations

import structlog
from fastapi import Depends, FastAPI

from app import health, lifespan
from app.accounts import router as accounts
from app.ai import router as ai
from app.artifacts import router as artifacts
from app.cdp import discovery, proxy
from app.connections import router as connections
from app.core import errors, openapi, query
from app.core.config import Settings
from app.core.methods import AllowedMethodsMiddleware
from app.core.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.current import account as current_account
from app.current import ai as current_ai
from app.current import browsers as current_browsers
from app.current import events as current_events
from app.current import files as current_files
from app.current import recordings as current_recordings
from app.current import runs as current_runs
from app.current import spaces as current_spaces
from app.current import traces as current_traces
from app.current import views as current_views
from app.current import webdriver as current_webdriver
from app.files import router as files
from app.invocations import router as invocations
from app.live import router as live
from app.runs import router as runs
from app.runtimes import router as runtimes
from app.spaces import router as spaces

log = structlog.get_logger(__name__)

ROUTERS = (
    health.router,
    # The current generation first: on a path an earlier one also serves, its routes match only
    # requests that name it (core/generation.py), and the rest fall through to the earlier routes.
    current_browsers.router,
    *current_runs.routers,
    current_webdriver.router,
    *current_events.routers,
    *current_traces.routers,
    *current_recordings.routers,
    *current_files.routers,
    *current_views.routers,
    *current_spaces.routers,
    *current_account.routers,
    *current_ai.routers,
    accounts.router,
    spaces.router,
    runtimes.seed,
    runtimes.flat,
    connections.router,
    runs.router,
    proxy.router,
    discovery.router,
    artifacts.router,
    *files.routers,
    *live.routers,
    *ai.routers,
    *invocations.routers,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    app = FastAPI(
        title="bctrl-server",
        version="0.1.0",
        summary="Self-hosted control plane for managed headless browsers (BCTRL platform API)",
        lifespan=lambda app: lifespan.serve(app, settings),
        dependencies=[Depends(query.check_query)],
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app, settings)
    app.add_middleware(AllowedMethodsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt_paths=files.UPLOAD_PATHS)
    app.add_middleware(RequestIdMiddleware)
    return app

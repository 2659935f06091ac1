"""create_app(): the FastAPI factory, its middleware and the router list (the assembly is app/lifespan.py)."""

from __future__ import annotations

import structlog
from fastapi import Depends, FastAPI

from app import health, lifespan, metrics_router
from app.accounts import router as accounts
from app.admission import router as admission
from app.ai import router as ai
from app.artifacts import router as artifacts
from app.cdp import discovery, proxy
from app.connections import router as connections
from app.console import router as console
from app.core import errors, openapi, query
from app.core.config import Settings
from app.core.methods import AllowedMethodsMiddleware
from app.core.metrics_middleware import MetricsMiddleware
from app.core.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.current import a2a as current_a2a
from app.current import account as current_account
from app.current import agents as current_agents
from app.current import ai as current_ai
from app.current import browser_files as current_browser_files
from app.current import browsers as current_browsers
from app.current import computer as current_computer
from app.current import control as current_control
from app.current import conversations as current_conversations
from app.current import drains as current_drains
from app.current import events as current_events
from app.current import extensions as current_extensions
from app.current import fetch as current_fetch
from app.current import files as current_files
from app.current import notification_recipients as current_notification_recipients
from app.current import operations as current_operations
from app.current import pages as current_pages
from app.current import proxies as current_proxies
from app.current import recordings as current_recordings
from app.current import runs as current_runs
from app.current import secrets as current_secrets
from app.current import spaces as current_spaces
from app.current import subaccounts as current_subaccounts
from app.current import tasks as current_tasks
from app.current import tool_calls as current_tool_calls
from app.current import tools as current_tools
from app.current import traces as current_traces
from app.current import usage as current_usage
from app.current import views as current_views
from app.current import webdriver as current_webdriver
from app.current import webhooks as current_webhooks
from app.files import router as files
from app.invocations import router as invocations
from app.live import router as live
from app.mcp import catalog as mcp_catalog
from app.mcp import server as mcp_server
from app.mcp import webmcp_server
from app.runs import router as runs
from app.runtimes import router as runtimes
from app.spaces import router as spaces

log = structlog.get_logger(__name__)

ROUTERS = (
    console.router,
    health.router,
    *admission.routers,
    metrics_router.router,
    # The current generation first: on a path an earlier one also serves, its routes match only
    # requests that name it (core/generation.py), and the rest fall through to the earlier routes.
    current_browsers.router,
    *current_pages.routers,
    *current_computer.routers,
    *current_browser_files.routers,
    *current_fetch.routers,
    *current_control.routers,
    *current_proxies.routers,
    *current_extensions.routers,
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
    *current_agents.routers,
    *current_a2a.routers,
    *current_tasks.routers,
    *current_conversations.routers,
    *current_tools.routers,
    *current_tool_calls.routers,
    *current_secrets.routers,
    *current_subaccounts.routers,
    *current_usage.routers,
    *current_webhooks.routers,
    *current_drains.routers,
    *current_notification_recipients.routers,
    *current_operations.routers,
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
    app.router.routes.append(mcp_server.route())  # MCP (Streamable HTTP) at /_mcp/server, not in /openapi.json
    app.state.mcp_tool_names = mcp_catalog.tool_names  # GET /v1/help names each operation's tool
    app.router.routes.append(webmcp_server.route())  # a run's webMcpUrl: its pages' WebMCP tools
    openapi.install(app, settings)
    app.mount("/console", console.assets(), name="console")
    app.add_middleware(AllowedMethodsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt_paths=files.UPLOAD_PATHS)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: it counts every answer, the refusals included
    return app

"""The Prometheus metrics of a server process, in one place (the ground floor, so any package may count).

Each server process has its own counters and exposes them at `GET /metrics` (app/metrics_router.py);
Prometheus scrapes every replica and sums. Gauges about the whole deployment (browsers by status,
the admission queue) are read from the database at scrape time by the hooks registered with
`on_scrape`, so every replica reports the same value: aggregate those with max(), not sum().

Label values are bounded sets (driver, location, outcome, reason codes, route templates); never an
id, a URL or a user's string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

if TYPE_CHECKING:
    from app.core.context import AppContext

# No `_created` series beside each counter: they double the scrape and nothing here reads them.
disable_created_metrics()

# Starts take 0.1 s (warm) to tens of seconds (a cold container); waits in the queue up to minutes.
_START_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The location of a browser that did not ask for one (or asked for `auto`): this host.
DEFAULT_LOCATION = "local"

# --- browsers ---------------------------------------------------------------------------------------
browser_starts = Counter(
    "bctrl_browser_starts",
    "Browser starts by driver, location and outcome (started, failed)",
    ["driver", "location", "outcome"],
)
browser_start_seconds = Histogram(
    "bctrl_browser_start_seconds",
    "From the start being admitted to the browser running (successful starts)",
    ["driver", "location"],
    buckets=_START_BUCKETS,
)
browsers = Gauge(
    "bctrl_browsers",
    "Browsers of the deployment holding a slot, by driver and status (from the database at scrape)",
    ["driver", "status"],
)

# --- admission (app/admission) ----------------------------------------------------------------------
admission_queue_depth = Gauge(
    "bctrl_admission_queue_depth", "Browser starts waiting in the admission queue (the deployment's)"
)
admission_wait_seconds = Histogram(
    "bctrl_admission_wait_seconds",
    "How long a queued start waited before it was granted a slot",
    buckets=_WAIT_BUCKETS,
)
admission_refusals = Counter(
    "bctrl_admission_refusals", "Starts refused by admission, by reason (the refusal's code)", ["reason"]
)

# --- warm pool (app/pool) ---------------------------------------------------------------------------
pool_browsers = Gauge("bctrl_pool_browsers", "Warm browsers launched ahead, by driver and state", ["driver", "state"])
pool_claims = Counter("bctrl_pool_claims", "Creates that took a warm browser (hit) or started cold (miss)", ["outcome"])

# --- leases and the controller lock -----------------------------------------------------------------
leases_created = Counter("bctrl_leases_created", "CDP leases created (seed leases and run connections)", ["scope"])
leases_active = Gauge(
    "bctrl_leases_active", "Active CDP leases of the deployment, by scope (from the database at scrape)", ["scope"]
)
controller_takes = Counter(
    "bctrl_controller_takes",
    "Attempts to take a browser's controller lock, by taker kind and outcome (granted, busy)",
    ["holder", "outcome"],
)

# --- the CDP proxy (app/cdp) ------------------------------------------------------------------------
cdp_connections = Gauge("bctrl_cdp_connections", "CDP sockets open through this process")
cdp_connections_opened = Counter("bctrl_cdp_connections_opened", "CDP sockets opened through this process")
cdp_attach_refusals = Counter("bctrl_cdp_attach_refusals", "CDP upgrades refused, by the refusal's code", ["code"])
cdp_messages = Counter("bctrl_cdp_messages", "CDP text messages relayed, by direction", ["direction"])
cdp_bytes = Counter("bctrl_cdp_bytes", "Bytes relayed by the CDP proxy, by direction", ["direction"])
# Bound once: the relays count every chunk, and a labelled child is a dictionary lookup cheaper to skip.
CDP_MESSAGES_FROM_CLIENT = cdp_messages.labels("client_to_browser")
CDP_MESSAGES_FROM_BROWSER = cdp_messages.labels("browser_to_client")
CDP_BYTES_FROM_CLIENT = cdp_bytes.labels("client_to_browser")
CDP_BYTES_FROM_BROWSER = cdp_bytes.labels("browser_to_client")

# --- run events (app/runs/writer.py) ----------------------------------------------------------------
events_written = Counter("bctrl_events_written", "Run events written by the batching writer")
events_dropped = Counter(
    "bctrl_events_dropped", "Run events the writer's queue policy dropped, by category", ["category"]
)
events_queued = Gauge("bctrl_events_queued", "Run events waiting in the writer's queue")
sse_subscribers = Gauge("bctrl_sse_subscribers", "Open server-sent event streams, by route", ["route"])

# --- outbox deliveries (app/webhooks, app/drains) ---------------------------------------------------
webhook_deliveries = Counter(
    "bctrl_webhook_deliveries", "Webhook delivery attempts by outcome (delivered, failed, gave_up)", ["outcome"]
)
webhook_delivery_seconds = Histogram(
    "bctrl_webhook_delivery_seconds", "From the event's commit to its webhook delivered", buckets=_WAIT_BUCKETS
)
drain_deliveries = Counter(
    "bctrl_drain_deliveries", "Drain batch deliveries by kind (https, otlp, s3) and outcome", ["kind", "outcome"]
)
drain_events = Counter("bctrl_drain_events", "Events exported by drains, by kind", ["kind"])

# --- HTTP (app/core/middleware.py: MetricsMiddleware) -----------------------------------------------
http_requests = Counter(
    "bctrl_http_requests", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
http_request_seconds = Histogram(
    "bctrl_http_request_seconds",
    "HTTP request duration by method and route template (event streams excluded)",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)


def location_of(launch_options: dict[str, Any] | None) -> str:
    """A browser's location label: the one its create named, `auto` or none meaning this host."""
    location = (launch_options or {}).get("location")
    return location if isinstance(location, str) and location not in ("", "auto") else DEFAULT_LOCATION


def browser_started(driver: str, launch_options: dict[str, Any] | None, took: timedelta) -> None:
    location = location_of(launch_options)
    browser_starts.labels(driver, location, "started").inc()
    browser_start_seconds.labels(driver, location).observe(max(0.0, took.total_seconds()))


def browser_start_failed(driver: str, launch_options: dict[str, Any] | None) -> None:
    browser_starts.labels(driver, location_of(launch_options), "failed").inc()


# --- gauges read at scrape time ----------------------------------------------------------------------

ScrapeHook = Callable[["AppContext"], Awaitable[None]]
_scrape_hooks: list[ScrapeHook] = []


def on_scrape(hook: ScrapeHook) -> ScrapeHook:
    """Register `hook(ctx)` to refresh gauges before each scrape (a decorator, used at import time).
    It must be quick (one indexed query) and raise nothing it can avoid: a failing hook is logged and
    the scrape goes on with the gauge's previous value."""
    if hook not in _scrape_hooks:
        _scrape_hooks.append(hook)
    return hook


def scrape_hooks() -> tuple[ScrapeHook, ...]:
    return tuple(_scrape_hooks)

"""Words of the published API description a person reads in /docs: a real title for every operation, what
each group of operations is and which API generation it belongs to, and the generations explained.

FastAPI titles an operation after its function's name ("Create Seed", "Healthz", "Whoami"). A route that
names its own `summary=` keeps it; the others get a title from TITLES (by method and path) or, failing
that, their function's words in sentence case with the acronyms spelt right ("List API keys").
"""

from __future__ import annotations

from typing import Any

from app.core.generation import CURRENT

# Titles where the function's name does not say what the operation does (or says only which generation
# serves it). Keyed by "METHOD /path" as the description spells them.
TITLES: dict[str, str] = {
    "GET /healthz": "Liveness check",
    "GET /readyz": "Readiness check (database, Redis, browser host, storage, ffmpeg)",
    "GET /pressure": "Free capacity and host load (for a load balancer)",
    "GET /metrics": "Prometheus metrics",
    "GET /v1/browsers/{browser_id}/runs": "List a browser's runs",
    "POST /v1/browsers/{browser_id}/pages/{page_id}/pdf": "Print a page as PDF",
    "POST /v1/browsers/{browser_id}/pages/{page_id}/screenshot": "Take a screenshot of a page",
    "POST /v1/browsers/{browser_id}/computer/click": "Click at a point",
    "POST /v1/browsers/{browser_id}/computer/double-click": "Double-click at a point",
    "POST /v1/browsers/{browser_id}/computer/move": "Move the mouse",
    "POST /v1/browsers/{browser_id}/computer/drag": "Drag the mouse",
    "POST /v1/browsers/{browser_id}/computer/scroll": "Scroll",
    "POST /v1/browsers/{browser_id}/computer/key": "Press keys",
    "POST /v1/browsers/{browser_id}/computer/type": "Type text",
    "POST /v1/browsers/{browser_id}/computer/wait": "Wait (then take a screenshot)",
    "POST /v1/browsers/{browser_id}/computer/screenshot": "Take a screenshot of the browser",
    "GET /v1/browsers/{browser_id}/computer/cursor": "Where the mouse cursor is",
    "POST /v1/browsers/{browser_id}/computer/batch": "Run several computer actions in order",
    "GET /v1/browsers/{browser_id}/computer/clipboard": "Read the browser's clipboard",
    "PUT /v1/browsers/{browser_id}/computer/clipboard": "Write the browser's clipboard",
    "GET /v1/browsers/{browser_id}/files": "List the browser's files",
    "DELETE /v1/browsers/{browser_id}/files": "Delete a file in the browser",
    "GET /v1/browsers/{browser_id}/files/content": "Download a file from the browser",
    "PUT /v1/browsers/{browser_id}/files/content": "Upload a file into the browser",
    "POST /v1/browsers/{browser_id}/files/move": "Move a file in the browser",
    "POST /v1/browsers/{browser_id}/fetch": "Fetch a URL with the browser's cookies and proxy",
    "POST /v1/browsers/{browser_id}/fetch/stream": "Fetch a URL with the browser's cookies, streamed",
    "GET /v1/browsers/{browser_id}/control": "Who controls the browser",
    "POST /v1/browsers/{browser_id}/control/take": "Take control of the browser (a person, through a view)",
    "POST /v1/browsers/{browser_id}/control/release": "Give control of the browser back",
    "POST /v1/browsers/{browser_id}/connections/revoke": "Revoke every connection to the browser",
    "GET /v1/proxies/pools": "List proxy pools",
    "GET /v1/proxies/pools/{pool_id}": "Get a proxy pool",
    "GET /v1/proxies/locations": "List proxy locations",
    "GET /v1/proxies/geo": "List proxy locations (geo)",
    "POST /v1/proxies/{proxy_id}/test": "Test a proxy",
    "GET /v1/runs/{run_id}/trace": "Get a run's trace (its spans)",
    "GET /v1/runs/{run_id}/recordings": "List a run's recordings",
    "GET /v1/runs/{run_id}/recordings/{recording_id}": "Get a recording",
    "GET /v1/browsers/{browser_id}/recording": "Get the browser's current recording",
    "GET /v1/recordings/download": "Download a recording",
    "GET /v1/help": "Help: what this API offers and where to start",
    "GET /v1/ai/models": "List the models of your AI credentials",
    "GET /v1/agents/{agent_id}/versions": "List an agent's versions",
    "GET /v1/agents/{agent_id}/versions/{version}": "Get an agent version",
    "POST /v1/agents/{agent_id}/versions/{version}/promote": "Promote an agent version",
    "GET /v1/agents/{agent_id}/a2a/.well-known/agent-card.json": "An agent's A2A agent card",
    "POST /v1/agents/{agent_id}/a2a": "Talk to an agent over A2A (JSON-RPC)",
    "POST /v1/tasks/{task_id}/input": "Answer a task's request for input",
    "POST /v1/tool-calls/{tool_call_id}/respond": "Respond to a tool call",
    "GET /v1/tool-calls/{tool_call_id}/result": "Get a tool call's result",
    "POST /v1/tools/{tool_ref}/calls": "Call a tool",
    "GET /v1/secrets/{secret}/versions": "List a secret's versions",
    "POST /v1/secrets/{secret}/reveal": "Reveal a secret's value (people only)",
    "GET /v1/subaccounts/usage": "Usage of every subaccount",
    "GET /v1/account/spending-cap": "Get the account's spending cap",
    "PATCH /v1/account/spending-cap": "Set the account's spending cap",
    "GET /v1/spaces/{space_id}/spending-cap": "Get a space's spending cap",
    "PATCH /v1/spaces/{space_id}/spending-cap": "Set a space's spending cap",
    "GET /v1/locations": "List locations",
    "POST /v1/webhooks/{webhook_id}/rotate-secret": "Rotate a webhook's signing secret",
    "POST /v1/webhooks/{webhook_id}/test": "Send a test delivery",
    "GET /v1/webhooks/{webhook_id}/deliveries": "List a webhook's deliveries",
    "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": "Deliver an event again",
    "POST /v1/drains/{drain_id}/test": "Send a test batch to a drain",
    "GET /v1/auth/whoami": "Who am I: the key's account and scopes",
    "POST /v1/spaces/{space_id}/runtimes": "Create and start a runtime (seed)",
    "GET /v1/spaces/{space_id}/runtimes": "List a space's runtimes (seed)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}": "Get a runtime (seed)",
    "DELETE /v1/spaces/{space_id}/runtimes/{runtime_id}": "Delete a runtime (seed)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/start": "Start a runtime (seed)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/stop": "Stop a runtime (seed)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}/runs": "List a runtime's runs (seed)",
    "POST /v1/runtimes": "Create a runtime (flat)",
    "GET /v1/runtimes": "List runtimes (flat)",
    "GET /v1/runtimes/{runtime_id}": "Get a runtime (flat)",
    "PATCH /v1/runtimes/{runtime_id}": "Update a runtime (flat)",
    "DELETE /v1/runtimes/{runtime_id}": "Delete a runtime (flat)",
    "POST /v1/runtimes/{runtime_id}/start": "Start a runtime (flat)",
    "POST /v1/runtimes/{runtime_id}/stop": "Stop a runtime (flat)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/connections": "Lease a CDP endpoint (seed)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}/connections": "List a runtime's leases (seed)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}/connections/{connection_id}": "Get a lease (seed)",
    "DELETE /v1/spaces/{space_id}/runtimes/{runtime_id}/connections/{connection_id}": "Revoke a lease (seed)",
    "GET /v1/runs/{run_id}/events": "List a run's events",
    "POST /v1/runs/{run_id}/events/wait": "Wait for a run's event",
    "GET /v1/runs/{run_id}/events/stream": "Stream a run's events (SSE)",
    "GET /v1/runs/{run_id}/stream": "Stream a run (SSE)",
    "GET /v1/runs/{run_id}/activity": "A run's activity, in people's words",
    "GET /v1/runs/{run_id}/commands": "CDP commands a run's clients sent, counted by method",
    "GET /v1/cdp/{connection_id}/json{rest}": "CDP discovery (/json/version, /json/list)",
    "GET /v1/runs/{run_id}/artifacts": "List a run's artifacts",
    "GET /v1/runs/{run_id}/artifacts/{artifact_id}": "Get an artifact",
    "GET /v1/runs/{run_id}/artifacts/{artifact_id}/content": "Download an artifact",
    "GET /v1/spaces/{space_id}/artifacts": "List a space's artifacts",
    "POST /v1/spaces/{space_id}/storage/files": "Upload a file to a space's storage (seed)",
    "GET /v1/spaces/{space_id}/storage/files": "List a space's stored files (seed)",
    "GET /v1/spaces/{space_id}/storage/files/{file_id}": "Get a stored file (seed)",
    "PATCH /v1/spaces/{space_id}/storage/files/{file_id}": "Update a stored file (seed)",
    "DELETE /v1/spaces/{space_id}/storage/files/{file_id}": "Delete a stored file (seed)",
    "GET /v1/spaces/{space_id}/storage/files/{file_id}/content": "Download a stored file (seed)",
    "POST /v1/files": "Upload a file (flat)",
    "GET /v1/files": "List files (flat)",
    "GET /v1/files/{file_id}": "Get a file (flat)",
    "PATCH /v1/files/{file_id}": "Update a file (flat)",
    "DELETE /v1/files/{file_id}": "Delete a file (flat)",
    "GET /v1/files/{file_id}/content": "Download a file (flat)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}/files": "List a runtime's files (seed)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/files/stage": "Put stored files into a runtime (seed)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/files/collect": "Keep a runtime's downloads (seed)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/files/upload": "Upload a file into a runtime (seed)",
    "GET /v1/runtimes/{runtime_id}/files": "List a runtime's files (flat)",
    "POST /v1/runtimes/{runtime_id}/files/stage": "Put stored files into a runtime (flat)",
    "POST /v1/runtimes/{runtime_id}/files/collect": "Keep a runtime's downloads (flat)",
    "POST /v1/runtimes/{runtime_id}/files/upload": "Upload a file into a runtime (flat)",
    "GET /v1/runs/{run_id}/files": "List a run's files",
    "POST /v1/runs/{run_id}/files/export": "Export a run's files",
    "POST /v1/runs/{run_id}/live": "Make a live view link",
    "POST /v1/runs/{run_id}/recording": "Make a replay link",
    "DELETE /v1/runs/{run_id}/viewers/{viewer_id}": "Revoke a live or replay link",
    "DELETE /v1/runs/{run_id}/viewers": "Revoke every live and replay link of a run",
    "GET /v1/replay/data": "A replay's timeline (with a replay link's token)",
    "GET /v1/replay/frames/{seq}": "A replay's frame (with a replay link's token)",
    "GET /v1/replay/video": "A replay's video (with a replay link's token)",
    "GET /v1/ai-connections": "List AI connections",
    "POST /v1/ai-connections": "Create an AI connection",
    "GET /v1/ai-connections/{connection_id}": "Get an AI connection",
    "PATCH /v1/ai-connections/{connection_id}": "Update an AI connection",
    "DELETE /v1/ai-connections/{connection_id}": "Delete an AI connection",
    "POST /v1/ai-connections/{connection_id}/test": "Test an AI connection",
    "GET /v1/ai/credentials": "List AI credentials (flat)",
    "POST /v1/ai/credentials": "Create AI credentials (flat)",
    "GET /v1/ai/credentials/{connection_id}": "Get AI credentials (flat)",
    "PATCH /v1/ai/credentials/{connection_id}": "Update AI credentials (flat)",
    "DELETE /v1/ai/credentials/{connection_id}": "Delete AI credentials (flat)",
    "POST /v1/ai/credentials/{connection_id}/test": "Test AI credentials (flat)",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/invocations": "Start an invocation in a runtime (seed)",
    "GET /v1/spaces/{space_id}/runtimes/{runtime_id}/invocations": "List a runtime's invocations (seed)",
    "POST /v1/runtimes/{runtime_id}/invocations": "Start an invocation in a runtime (flat)",
    "GET /v1/runs/{run_id}/invocations": "List a run's invocations",
    "POST /v1/invocations/{invocation_id}/wait": "Wait for an invocation to finish",
}

_ACRONYMS = {
    "api": "API",
    "ai": "AI",
    "cdp": "CDP",
    "pdf": "PDF",
    "url": "URL",
    "a2a": "A2A",
    "sse": "SSE",
    "id": "id",
    "ids": "ids",
}


def _auto(operation: dict[str, Any]) -> bool:
    """Whether FastAPI made the summary from the function's name (the operation id starts with it)."""
    summary, operation_id = operation.get("summary") or "", operation.get("operationId") or ""
    return not summary or operation_id.startswith(summary.lower().replace(" ", "_") + "_")


def summary(method: str, path: str, operation: dict[str, Any]) -> str:
    """The operation's title: its route's own, ours from TITLES, or its function's words in sentence case."""
    if not _auto(operation):
        return operation["summary"]
    known = TITLES.get(f"{method.upper()} {path}")
    if known:
        return known
    words = (operation.get("summary") or operation.get("operationId") or path).split()
    spelt = [_ACRONYMS.get(word.lower(), word.lower()) for word in words]
    spelt[0] = spelt[0][:1].upper() + spelt[0][1:]
    return " ".join(spelt)


GENERATION_WORDS = {
    "current": f"**Current generation** (send `BCTRL-Version: {CURRENT}`; the Python SDK 0.3 does).",
    "flat": "**Flat generation** (no `BCTRL-Version` header; the Python SDK 0.2, `bctrl.legacy` in 0.3).",
    "seed": "**Seed generation** (no `BCTRL-Version` header; plain HTTP clients of the first contract).",
    "earlier": "**Seed and flat generations** (no `BCTRL-Version` header); current clients reach it too.",
    "every": "**Every generation** (no version header).",
}

# What each group is, in a user's words, and which generation serves it. A tag not listed here is described
# by where its routes live: all in app/current is the current generation, else every generation.
TAGS: dict[str, tuple[str, str]] = {
    "browsers (current)": ("current", "Browsers: persistent; each start opens a run. Create, start, stop, control."),
    "runs (current)": ("current", "Runs: one per start of a browser."),
    "pages": ("current", "The tabs of a running browser: open, navigate, screenshot, PDF."),
    "browser computer": ("current", "Mouse, keyboard and screenshots of a running browser (computer use)."),
    "browser files": ("current", "Files inside a running browser (downloads, uploads)."),
    "browser fetch": ("current", "Requests made from a running browser, with its cookies and proxy."),
    "events": ("current", "Events across runs: list, get, stream."),
    "traces (current)": ("current", "Traces: a run's spans, built from what it recorded."),
    "recordings (current)": ("current", "Recordings of runs (video and frames)."),
    "views": ("current", "Views: scoped, expiring links to one page (live view and control, events, replay)."),
    "runtimes (seed)": ("seed", "Runtimes under a space; a create also starts it."),
    "files (seed)": ("seed", "A space's stored files."),
    "runtime files (seed)": ("seed", "Files inside a running runtime."),
    "connections": ("seed", "CDP leases: a short-lived endpoint URL, shown once, holding the runtime's controller."),
    "ai connections": ("seed", "AI connections: your LLM endpoints and keys (encrypted at rest)."),
    "runtimes": ("flat", "Runtimes; `start` mints the run's CDP URL."),
    "files": ("flat", "Stored files."),
    "runtime files": ("flat", "Files inside a running runtime."),
    "ai credentials (flat)": ("flat", "AI credentials: your LLM endpoints and keys (encrypted at rest)."),
    "spaces": ("earlier", "Spaces: a project's browsers, runs and files."),
    "runs": ("earlier", "Runs and their events, activity and CDP command counts."),
    "artifacts": ("earlier", "Artifacts a run produced (downloads, screenshots, recordings)."),
    "auth": ("earlier", "The API key in use."),
    "invocations": ("earlier", "Hosted AI work in a runtime's browser (the browserUse engine and others)."),
    "live view and recording": ("earlier", "Live view and replay links of a run."),
    "cdp": ("earlier", "CDP discovery of a lease's endpoint, for `connect_over_cdp('http://...')`."),
    "health": ("every", "Liveness, readiness, capacity and metrics, for operators and load balancers."),
}
_ORDER = ("current", "earlier", "flat", "seed", "every")


def tags(schema: dict[str, Any], current_tags: set[str]) -> list[dict[str, str]]:
    """Every tag the operations use, with its generation and what it holds; the current generation first."""
    used: list[str] = []
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for tag in operation.get("tags", []):
                if tag not in used:
                    used.append(tag)
    described = []
    for tag in used:
        kind, words = TAGS.get(tag, ("current" if tag in current_tags else "every", ""))
        if kind == "every" and tag not in TAGS:
            kind = "earlier"
        described.append((_ORDER.index(kind), tag, f"{GENERATION_WORDS[kind]} {words}".strip()))
    described.sort(key=lambda row: row[0])
    return [{"name": tag, "description": text} for _, tag, text in described]


def description(shared_paths: set[str]) -> str:
    shared = ", ".join(f"`{path}`" for path in sorted(shared_paths)) or "none"
    return f"""\
The API of a self-hosted bctrl-server: browsers you create, start and stop over REST, the CDP endpoint
Playwright or Puppeteer connects to, the record of each run (events, trace, recordings, files), live
views, agents and tasks, and the operations surface. Authenticate with an API key,
`Authorization: Bearer <key>` (the **Authorize** button): mint one with `bctrl-server keys create` on the
server, or `POST /v1/api-keys` with a key you have.

## Three generations of the API, one server

The server speaks three generations of the BCTRL API over the same browsers and runs, so clients of
each keep working. A request picks its generation with the `BCTRL-Version` header:

| generation | who speaks it | the request sends | where it starts |
|---|---|---|---|
| **current** | the Python SDK 0.3 (`from bctrl import Bctrl`), the web console | `BCTRL-Version: {CURRENT}` (a later date is served as {CURRENT}) | `/v1/browsers` |
| **flat** | the Python SDK 0.2 (`bctrl.legacy` in 0.3) | no header, or a date before {CURRENT} | `/v1/runtimes` |
| **seed** | the first contract's plain HTTP clients | no header | `/v1/spaces/{{id}}/runtimes` |

**Use the current generation** for anything new: it has browsers that keep their state between runs,
pages and computer use, views, agents and tasks. The earlier two are kept for the clients that speak
them. A path only one generation serves answers whatever the header says (each group below says whose
it is); a header that is not a date is 400 `request.version_unsupported`. Where the current generation
and an earlier one share a path, this reference shows the earlier shape and the current one is what a
request with the header gets: {shared}.
"""

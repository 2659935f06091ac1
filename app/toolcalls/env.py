"""What a tool call runs in: the caller's account, space, task and browser, and how it reports.

The task runner (or a direct `POST /v1/tools/{ref}/calls`) builds one `ToolEnv` per task or call and
hands it to `app.toolcalls.executors.call_tool`. Nothing here opens a browser or a transaction: the
caller owns the browser (its controller lock, its Playwright connection) and the env only gives
executors a way to reach the page it already holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

PageGetter = Callable[[], Awaitable[Any]]  # async () -> playwright.async_api.Page
InputRequestHook = Callable[[dict[str, Any] | None], Awaitable[None]]
Emit = Callable[[str, dict[str, Any]], None]


def _never() -> bool:
    return False


async def _no_input_hook(_request: dict[str, Any] | None) -> None:
    return None


def _no_emit(_type: str, _data: dict[str, Any]) -> None:
    return None


@dataclass
class ToolEnv:
    """Everything an executor may use. `page` is None when the caller has no browser (a browser tool is
    then refused with `tool.runtime_unavailable`); `engine` is an `app.invocations.engine.Engine` on the
    caller's model, None when there is no model (stagehand tools are then refused the same way).

    `on_input_request(request)` is awaited when `human.request` suspends (the request dict: id, prompt,
    schema, expiresAt, handoff, viewUrl) and again with None when the call leaves `awaiting_input`, so a
    task can show `awaiting_input` meanwhile. `emit(type, data)` reports `tool_call.*` events (never a
    secret value in `data`). `cancelled()` is polled between steps: True stops the call as canceled.
    `actor` is who is acting (for the vault's audit): {"kind": "task", "taskId": ...} (a task), {"kind": "api_key", "keyId": ...} (a person's direct call).
    `view_url` is the task's browser's view address when it has one (put in inputRequest.viewUrl)."""

    account_id: uuid.UUID
    space_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    runtime_id: uuid.UUID | None = None
    page: PageGetter | None = None
    engine: Any | None = None
    cancelled: Callable[[], bool] = _never
    on_input_request: InputRequestHook = _no_input_hook
    emit: Emit = _no_emit
    actor: dict[str, Any] = field(default_factory=lambda: {"kind": "system"})
    view_url: str | None = None
    span_id: str | None = None
    # The page browser.pages.open/activate made active (a target id); browser tools act on it by default.
    active_page_id: str | None = None

"""A task's events (`task.*`, and its tool calls' `tool_call.*`): written through the event writer with
the task, its conversation and its agent as keys, so `GET /v1/events?task=…` finds them, also for a
task without a browser."""

from __future__ import annotations

from typing import Any

from app.core.context import AppContext
from app.runs.command_models import Command


def emit(ctx: AppContext, row: Command, type: str, data: dict[str, Any] | None = None) -> None:
    ctx.events.emit(
        row.run_id,
        type,
        "tool_call" if type.startswith("tool_call.") else "task",
        {"taskId": str(row.id), **(data or {})},
        source="api",
        task_id=row.id,
        conversation_id=row.conversation_id,
        agent_id=row.agent_id,
    )

"""Running a tool call: `call_tool` records it, runs the tool's executor, records how it ended.

A tool failure never raises out of `call_tool`: the outcome carries the error (code, message) for the
model to read. Cancellation (`env.cancelled()`, or the row cancelled through the API, seen here at once
or from another process within a poll) stops the executor: its asyncio task is cancelled, which aborts
a webhook request in flight and ends a `human.request` wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.context import AppContext
from app.toolcalls import runners, service
from app.toolcalls.env import ToolEnv
from app.toolcalls.failures import ToolFailed

if TYPE_CHECKING:
    from app.tools.service import ResolvedTool


@dataclass
class ToolOutcome:
    call_id: uuid.UUID
    ok: bool
    result: Any | None = None
    error: dict[str, Any] | None = None
    status: str = "succeeded"


_CANCELED = service.error_of("tool_call.canceled", "The tool call was cancelled")


async def call_tool(
    ctx: AppContext,
    env: ToolEnv,
    tool: ResolvedTool,
    input: dict[str, Any],
    caller_type: str,
    parent_id: uuid.UUID | None = None,
) -> ToolOutcome:
    """Record the call, run it, record its end. Never raises for a tool failure."""
    row = await begin(ctx, env, tool, input, caller_type, parent_id)
    return await run(ctx, env, tool, input, row.id)


async def begin(
    ctx: AppContext,
    env: ToolEnv,
    tool: ResolvedTool,
    input: dict[str, Any],
    caller_type: str,
    parent_id: uuid.UUID | None = None,
):
    """Only the record (status running); `run` executes it. Split so a route can answer with the call
    while it runs in the background."""
    custom = getattr(tool, "custom", None)
    row = await service.record(
        ctx,
        account_id=env.account_id,
        space_id=env.space_id,
        task_id=env.task_id,
        run_id=env.run_id,
        runtime_id=env.runtime_id,
        parent_id=parent_id,
        tool_name=tool.name,
        custom_tool_id=getattr(custom, "id", None),
        caller_type=caller_type,
        status="running",
        input=runners.stored_input(tool, input),
        span_id=env.span_id,
    )
    env.emit("tool_call.started", {"toolCallId": str(row.id), "tool": tool.name, "callerType": caller_type})
    return row


async def run(
    ctx: AppContext, env: ToolEnv, tool: ResolvedTool, input: dict[str, Any], call_id: uuid.UUID
) -> ToolOutcome:
    work = asyncio.ensure_future(runners.execute(ctx, env, tool, input, call_id))
    service.RUNNING[call_id] = work
    watch = asyncio.ensure_future(_watch(ctx, env, call_id, work))
    status, result, error = "succeeded", None, None
    try:
        try:
            result = await work
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                # The caller itself is being cancelled (its task ended): the call ends canceled too.
                await asyncio.shield(service.finish(ctx, call_id, "canceled", error=_CANCELED))
                raise
            status, error = "canceled", _CANCELED
        except ToolFailed as exc:
            status, error = "failed", service.error_of(exc.code, exc.message, retryable=exc.retryable)
        except Exception as exc:  # an executor bug must not take the task down with it
            status, error = "failed", service.error_of("tool.host_failed", f"The tool failed: {str(exc)[:300]}")
    finally:
        service.RUNNING.pop(call_id, None)
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    ended = await service.finish(ctx, call_id, status, result=result if status == "succeeded" else None, error=error)
    if not ended:  # cancelled through the API first: the row says so
        row = await service.load(ctx, call_id)
        if row is not None:
            status, error, result = row.status, row.error, row.result
    event = {"toolCallId": str(call_id), "tool": tool.name, "status": status}
    if error:
        event["error"] = {"code": error.get("code"), "message": error.get("message")}
    env.emit(f"tool_call.{status}", event)
    return ToolOutcome(call_id, status == "succeeded", result if status == "succeeded" else None, error, status)


async def _watch(ctx: AppContext, env: ToolEnv, call_id: uuid.UUID, work: asyncio.Future) -> None:
    """Cancel the executor when the caller says so or the row was cancelled (by another process)."""
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + service.HEARTBEAT_SECONDS
    while not work.done():
        await asyncio.sleep(service.POLL_SECONDS)
        if loop.time() >= next_beat:
            next_beat = loop.time() + service.HEARTBEAT_SECONDS
            with contextlib.suppress(Exception):
                await service.beat(ctx, call_id)
        try:
            if env.cancelled():
                await service.finish(ctx, call_id, "canceled", error=_CANCELED)
                work.cancel()
                return
            row = await service.load(ctx, call_id)
        except Exception:  # a database hiccup: look again next time
            continue
        if row is not None and row.status == "canceled":
            work.cancel()
            return

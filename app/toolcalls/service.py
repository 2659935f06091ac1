"""Tool call records: created when a call starts, moved through its lifecycle by the executor, read,
cancelled and answered by people.

Statuses: queued -> running -> (awaiting_input -> running)* -> succeeded | failed | canceled. A finished
call never changes again: whichever of "the executor finished" and "a person cancelled" commits first
wins (every transition is a conditional UPDATE on the status it expects).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from referencing.exceptions import Unresolvable
from sqlalchemy import select
from sqlalchemy import update as sa_update

from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.toolcalls.models import ACTIVE, FINISHED, ToolCall

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 5.0

# Calls this process is executing, so a cancel that lands here stops the executor at once (another
# process's executor notices the row within POLL_SECONDS).
RUNNING: dict[uuid.UUID, asyncio.Task] = {}


class InputExpired(DomainError):
    status = 409
    code = "tool_call.input_expired"


def not_found(call_id: object) -> NotFound:
    return NotFound("Tool call not found", code="tool_call.not_found", details={"toolCallId": str(call_id)})


def error_of(code: str, message: str, *, retryable: bool = False, event_id: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "retryable": retryable, "eventId": event_id}


async def record(
    ctx: AppContext,
    *,
    account_id: uuid.UUID,
    tool_name: str,
    input: dict[str, Any],
    caller_type: str,
    space_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    runtime_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    custom_tool_id: uuid.UUID | None = None,
    span_id: str | None = None,
    status: str = "queued",
) -> ToolCall:
    """Keep a new call. `input` must already have its secret values left out."""
    now = clock.now()
    row = ToolCall(
        id=ids.new_id(),
        account_id=account_id,
        space_id=space_id,
        task_id=task_id,
        run_id=run_id,
        runtime_id=runtime_id,
        parent_id=parent_id,
        tool_name=tool_name,
        custom_tool_id=custom_tool_id,
        caller_type=caller_type,
        status=status,
        input=input,
        result=None,
        error=None,
        input_request=None,
        response=None,
        responded_by=None,
        span_id=span_id,
        expires_at=None,
        heartbeat_at=now,
        created_at=now,
        started_at=now if status == "running" else None,
        finished_at=None,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(row)
    return row


async def _move(ctx: AppContext, call_id: uuid.UUID, expected: tuple[str, ...], **values: Any) -> bool:
    values.setdefault("updated_at", clock.now())
    async with ctx.db.transaction() as s:
        res = await s.execute(
            sa_update(ToolCall)
            .where(ToolCall.id == call_id, ToolCall.status.in_(expected))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return res.rowcount == 1


async def finish(
    ctx: AppContext, call_id: uuid.UUID, status: str, *, result: Any = None, error: dict[str, Any] | None = None
) -> bool:
    """End an active call (False when it had already ended: a cancel won)."""
    assert status in FINISHED
    now = clock.now()
    return await _move(ctx, call_id, ACTIVE, status=status, result=result, error=error, finished_at=now, updated_at=now)


async def suspend(ctx: AppContext, call_id: uuid.UUID, input_request: dict[str, Any], expires_at: datetime) -> bool:
    return await _move(
        ctx, call_id, ("running",), status="awaiting_input", input_request=input_request, expires_at=expires_at
    )


async def load(ctx: AppContext, call_id: uuid.UUID) -> ToolCall | None:
    async with ctx.db.read() as s:
        return await s.get(ToolCall, call_id)


async def get(ctx: AppContext, account_id: uuid.UUID, call_id: str) -> ToolCall:
    row = await get_owned(ctx.db, ToolCall, call_id, account_id)
    if row is None:
        raise not_found(call_id)
    return row


async def list_for(
    ctx: AppContext,
    account_id: uuid.UUID,
    page: PageParams,
    *,
    newest_first: bool = True,
    space_id: uuid.UUID | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    runtime_id: str | None = None,
    tool: str | None = None,
    status: str | None = None,
) -> tuple[list[ToolCall], str | None]:
    """One page of the account's calls. An id filter that is not an id matches nothing."""
    stmt = select(ToolCall).where(ToolCall.account_id == account_id)
    if space_id is not None:
        stmt = stmt.where(ToolCall.space_id == space_id)
    for column, raw in ((ToolCall.task_id, task_id), (ToolCall.run_id, run_id), (ToolCall.runtime_id, runtime_id)):
        if raw is not None:
            parsed = ids.parse_uuid(raw)
            stmt = stmt.where(column == parsed) if parsed is not None else stmt.where(False)
    if tool is not None:
        parsed = ids.parse_uuid(tool)
        stmt = stmt.where(ToolCall.custom_tool_id == parsed) if parsed else stmt.where(ToolCall.tool_name == tool)
    if status is not None:
        stmt = stmt.where(ToolCall.status == status)
    return await fetch_by_id(ctx.db, stmt, ToolCall.id, page, newest_first=newest_first)


async def cancel(ctx: AppContext, call: ToolCall) -> ToolCall:
    """Cancel an active call: it ends `canceled` now and its executor stops (here at once, in another
    process within POLL_SECONDS). Cancelling a cancelled call is a no-op; a call that already
    succeeded or failed is 409 `tool_call.state_invalid`."""
    ended = await finish(ctx, call.id, "canceled", error=error_of("tool_call.canceled", "The tool call was cancelled"))
    row = await load(ctx, call.id)
    assert row is not None
    if not ended and row.status != "canceled":
        raise Conflict(
            f"The tool call already {row.status}",
            code="tool_call.state_invalid",
            details={"toolCallId": str(call.id), "status": row.status},
        )
    task = RUNNING.get(call.id)
    if task is not None and not task.done():
        task.cancel()
    return row


def _expired(row: ToolCall) -> bool:
    return row.expires_at is not None and row.expires_at <= clock.now()


async def respond(ctx: AppContext, call: ToolCall, value: Any, actor: dict[str, Any] | None = None) -> ToolCall:
    """A person's answer to a suspended call: validated against the request's schema (400
    `tool_call.response_invalid`), kept, and the call runs on. 409 `tool_call.input_already_responded`
    when an answer was already taken, `tool_call.state_invalid` when the call is not waiting for input,
    `tool_call.input_expired` once the request's expiry has passed."""
    row = await load(ctx, call.id) or call
    if row.status != "awaiting_input":
        if row.responded_by is not None:
            raise Conflict(
                "This input request was already answered",
                code="tool_call.input_already_responded",
                details={"toolCallId": str(row.id)},
            )
        if row.error and row.error.get("code") == "tool_call.input_expired":
            raise InputExpired("The input request expired", details={"toolCallId": str(row.id)})
        raise Conflict(
            f"The tool call is {row.status}, not waiting for input",
            code="tool_call.state_invalid",
            details={"toolCallId": str(row.id), "status": row.status},
        )
    if _expired(row):
        raise InputExpired(
            "The input request expired", details={"toolCallId": str(row.id), "expiresAt": clock.iso(row.expires_at)}
        )
    schema = (row.input_request or {}).get("schema") or {}
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise InvalidRequest(
            f"The answer does not match the request's schema: {exc.message[:300]}",
            code="tool_call.response_invalid",
            details={
                "fields": [
                    {
                        "field": "/".join(str(p) for p in exc.absolute_path) or "body",
                        "in": "body",
                        "message": exc.message[:300],
                        "type": "invalid",
                    }
                ]
            },
        ) from None
    except jsonschema.SchemaError:
        pass  # the schema was checked when the request was made; an odd one accepts anything
    except Unresolvable as exc:  # a request made before its refs were checked: say so, never a 500
        raise InvalidRequest(
            f"The request's schema cannot be checked: {str(exc)[:200]}", code="tool_call.response_invalid"
        ) from None
    moved = await _move(
        ctx, row.id, ("awaiting_input",), status="running", response=value, responded_by=actor or {"type": "api"}
    )
    if not moved:
        return await respond(ctx, row, value, actor)  # it changed underneath: say what it is now
    fresh = await load(ctx, row.id)
    assert fresh is not None
    return fresh


async def wait(ctx: AppContext, call: ToolCall, seconds: float) -> ToolCall:
    """The call once it is finished or waiting for input, or as it is after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, seconds)
    row = call
    while True:
        row = await load(ctx, call.id) or row
        if row.status not in ("queued", "running") or loop.time() >= deadline:
            return row
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))


async def beat(ctx: AppContext, call_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as s:
        await s.execute(
            sa_update(ToolCall)
            .where(ToolCall.id == call_id, ToolCall.status.in_(ACTIVE))
            .values(heartbeat_at=clock.now())
            .execution_options(synchronize_session=False)
        )


async def recover(ctx: AppContext, dead_after_seconds: float | None = None) -> int:
    """End active calls whose executor stopped beating (its process died): failed
    `tool.outcome_unknown` (a webhook may or may not have acted). Returns how many were ended."""
    seconds = dead_after_seconds or max(ctx.settings.invocation_dead_after_seconds, 3 * HEARTBEAT_SECONDS)
    cutoff = clock.now() - timedelta(seconds=seconds)
    now = clock.now()
    stale = (ToolCall.status.in_(ACTIVE)) & ((ToolCall.heartbeat_at.is_(None)) | (ToolCall.heartbeat_at < cutoff))
    async with ctx.db.read() as s:
        if (await s.execute(select(ToolCall.id).where(stale).limit(1))).first() is None:
            return 0  # the usual sweep: one read, no write
    async with ctx.db.transaction() as s:
        res = await s.execute(
            sa_update(ToolCall)
            .where(
                ToolCall.status.in_(ACTIVE),
                (ToolCall.heartbeat_at.is_(None)) | (ToolCall.heartbeat_at < cutoff),
            )
            .values(
                status="failed",
                error=error_of(
                    "tool.outcome_unknown", "The server process running the call stopped; its outcome is unknown"
                ),
                finished_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return res.rowcount or 0

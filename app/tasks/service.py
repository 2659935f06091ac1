"""Tasks: an agent version run on an input in a conversation. A task is a durable row of `commands`
(`provider` "agent", `method` "task") that the invocation worker runs through the runner this package
registers with it (app/tasks/runner.py), so invocations and tasks are one execution path and record.

Internal statuses: queued, running, cancelling, awaiting_input, succeeded, failed, timed_out,
cancelled (the current generation's words are the routes' business).

A task given `metadata.browserId` takes that browser's controller lock (holder kind "invocation",
token the task id) in the transaction that records it, as invocations do; otherwise the runner
launches a browser when the agent version has browser tools, and stops it at the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.accounts.service import Principal
from app.agents import service as agents
from app.agents.models import Agent
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.invocations.engine import check_schema
from app.invocations.service import LOCK_TTL_MS, request_cancel
from app.locks import Holder
from app.runs import commands
from app.runs.command_models import TERMINAL_STATUSES, Command
from app.runtimes import controller
from app.runtimes import service as runtimes
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces import service as spaces
from app.spaces.models import Space
from app.tasks import conversations, events
from app.toolcalls import service as toolcalls
from app.toolcalls.models import ToolCall

PROVIDER = "agent"
METHOD = "task"
# A `wait` ends on these as well as on the terminal statuses: a person must answer.
WAIT_ENDS = (*TERMINAL_STATUSES, "awaiting_input")


@dataclass
class TaskSpec:
    """What a task is asked to do. `agent`: an agent's id or name in the space; `version`: a version
    number (the promoted one when None); `conversation`: a conversation id to continue (a new one when
    None); `space_ref`: a space id or `default` (the conversation's, else the default space, when None)."""

    agent: str
    input: Any
    version: int | None = None
    conversation: str | None = None
    metadata: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    space_ref: str | None = None


def not_found(task_id: object) -> NotFound:
    return NotFound("Task not found", code="task.not_found", details={"taskId": str(task_id)})


def not_running(row: Command, message: str) -> Conflict:
    return Conflict(message, code="task.not_running", details={"taskId": str(row.id), "status": row.status})


def is_task(row: Command | None) -> bool:
    return row is not None and row.execution_mode == "durable" and row.provider == PROVIDER


def browser_ref(metadata: dict[str, Any] | None) -> str | None:
    ref = (metadata or {}).get("browserId")
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref or len(ref) > 200:
        raise InvalidRequest(
            "metadata.browserId must be a browser's id or name",
            code="request.invalid",
            details={"field": "metadata.browserId"},
        )
    return ref


def timeout_seconds(ctx: AppContext) -> int:
    return ctx.settings.task_timeout_seconds


async def create(ctx: AppContext, p: Principal, spec: TaskSpec) -> Command:
    """Record the task `queued` (and its conversation, its input message, the browser's lock when it
    names one) in one transaction; nothing is made when anything is refused."""
    if spec.output_schema is not None and (problem := check_schema(spec.output_schema)):
        raise InvalidRequest(
            f"outputSchema is not a valid JSON Schema: {problem}",
            code="request.invalid",
            details={"field": "outputSchema"},
        )
    wanted_browser = browser_ref(spec.metadata)
    conversation = None
    if spec.conversation is not None:
        conversation = await conversations.get(ctx, p, spec.conversation)
    if spec.space_ref is not None:
        space = await spaces.get(ctx, p, spec.space_ref)
        if conversation is not None and conversation.space_id != space.id:
            raise Conflict(
                "The conversation belongs to another space",
                code="task.space_mismatch",
                details={"conversationId": str(conversation.id), "spaceId": str(space.id)},
            )
    elif conversation is not None:
        async with ctx.db.read() as s:
            space = await s.get(Space, conversation.space_id)
    else:
        space = await spaces.default_space(ctx, p)
    agent, version = await agents.resolve_for_task(ctx, p, spec.agent, space, spec.version)
    if space.id not in agents.allowed_spaces(version, agent.space_id):
        raise DomainError(
            "The agent version's scope does not include this space",
            code="task.scope_denied",
            status=403,
            details={"agentId": str(agent.id), "version": version.version, "spaceId": str(space.id)},
        )
    connection, model = await agents.resolve_model(ctx, p.account_id, version.model)
    runtime: Runtime | None = None
    if wanted_browser is not None:
        runtime = await runtimes.find(ctx, p, wanted_browser, space)
        if runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id is None:
            raise runtime_not_active(runtime.id, runtime.status, "The browser is not running")

    task_id = ids.new_id()
    now = clock.now()
    request = {"connection": str(connection.id), "model": model, "engine": version.engine}
    async with ctx.db.transaction() as s:
        conv = await conversations.open_for_task(s, p.account_id, space.id, agent.id, conversation, task_id)
        if runtime is not None:
            lock_token = await controller.take(ctx, s, runtime.id, Holder("invocation", task_id.hex), LOCK_TTL_MS)
            row = await commands.record(s, runtime.active_run_id, f"{PROVIDER}.{METHOD}", request=request)
            row.lock_token, row.run_ids = lock_token, [str(runtime.active_run_id)]
        else:
            row = Command(
                account_id=p.account_id,
                space_id=space.id,
                run_id=None,
                runtime_id=None,
                sequence_no=0,
                entry_call=f"{PROVIDER}.{METHOD}",
                request=request,
                created_at=now,
                run_ids=[],
            )
            s.add(row)
        row.id, row.execution_mode, row.status = task_id, "durable", "queued"
        row.started_at = row.finished_at = row.result = row.error = None
        row.provider, row.method = PROVIDER, METHOD
        row.timeout_seconds = timeout_seconds(ctx)
        row.progress = {"step": 0, "message": "queued"}
        row.agent_id, row.agent_version_id, row.agent_version = agent.id, version.id, version.version
        row.conversation_id = conv.id
        row.task_input, row.task_metadata, row.output_schema = spec.input, spec.metadata, spec.output_schema
        row.input_tokens = row.output_tokens = 0
        row.launched_browser = False
        row.trace_id = task_id.hex
        row.updated_at = now
        await conversations.append(s, conv.id, task_id, "input", {"role": "user", "input": spec.input})
    events.emit(ctx, row, "task.created", {"agentVersion": row.agent_version, "model": model})
    if ctx.invocations is not None:
        ctx.invocations.wake()
    return row


async def get(ctx: AppContext, p: Principal, task_id: str) -> Command:
    row = await get_owned(ctx.db, Command, task_id, p.account_id)
    if not is_task(row):
        raise not_found(task_id)
    return row


async def reload(ctx: AppContext, task_id: uuid.UUID) -> Command:
    async with ctx.db.read() as s:
        return await s.get(Command, task_id, populate_existing=True)


async def list_for(
    ctx: AppContext,
    p: Principal,
    page: PageParams,
    *,
    agent_id: uuid.UUID | Sequence[uuid.UUID] | None = None,
    conversation_id: uuid.UUID | None = None,
    status: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    space_id: uuid.UUID | None = None,
    newest_first: bool = True,
) -> tuple[list[Command], str | None]:
    """`status`: internal statuses (any of them)."""
    stmt = select(Command).where(
        Command.account_id == p.account_id, Command.execution_mode == "durable", Command.provider == PROVIDER
    )
    if isinstance(agent_id, uuid.UUID):
        stmt = stmt.where(Command.agent_id == agent_id)
    elif agent_id is not None:
        stmt = stmt.where(Command.agent_id.in_(list(agent_id)))
    if conversation_id is not None:
        stmt = stmt.where(Command.conversation_id == conversation_id)
    if status:
        stmt = stmt.where(Command.status.in_(list(status)))
    if since is not None:
        stmt = stmt.where(Command.created_at >= since)
    if until is not None:
        stmt = stmt.where(Command.created_at < until)
    if space_id is not None:
        stmt = stmt.where(Command.space_id == space_id)
    return await fetch_by_id(ctx.db, stmt, Command.id, page, newest_first=newest_first)


async def wait(ctx: AppContext, row: Command, timeout_ms: int) -> Command:
    """The task once it finished or asks for input, or as it is after `timeout_ms`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    while row.status not in WAIT_ENDS and loop.time() < deadline:
        await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
        row = await reload(ctx, row.id)
    return row


async def cancel(ctx: AppContext, row: Command) -> Command:
    """Queued: cancelled at once (its lock and conversation let go). Running or awaiting input:
    `cancelling`, and the runner stops before its next step (a pending input request fails). A task
    already cancelled is returned as it is; one that succeeded or failed is 409 `task.not_running`."""
    async with ctx.db.transaction() as s:
        queued = await request_cancel(s, row, {"code": "task.canceled", "message": "Canceled before it started"})
        if queued:
            if row.runtime_id is not None:
                await controller.release(ctx, s, row.runtime_id, row.lock_token)
            await conversations.release(s, row.conversation_id, row.id)
    fresh = await reload(ctx, row.id)
    if queued:
        events.emit(ctx, fresh, "task.canceled", {"steps": 0})
    elif fresh.status in ("succeeded", "failed", "timed_out"):
        raise not_running(fresh, "The task has already finished")
    return fresh


async def answer(ctx: AppContext, p: Principal, row: Command, request_id: str, value: Any) -> Command:
    """Answer the task's pending input request `request_id` (a suspended tool call's id)."""
    pending = row.input_request or {}
    if row.status != "awaiting_input" or not pending:
        raise Conflict(
            "The task is not waiting for input",
            code="task.input_not_requested",
            details={"taskId": str(row.id), "status": row.status},
        )
    if pending.get("id") != request_id:
        raise Conflict(
            "That is not the task's pending input request",
            code="task.input_request_mismatch",
            details={"taskId": str(row.id), "requestId": request_id, "pendingRequestId": pending.get("id")},
        )
    call = await get_owned(ctx.db, ToolCall, request_id, p.account_id)
    if call is None:
        raise Conflict(
            "That input request no longer exists",
            code="task.input_request_mismatch",
            details={"taskId": str(row.id), "requestId": request_id},
        )
    await toolcalls.respond(ctx, call, value)
    # The runner resumes and records `running`; the answer is visible at once either way.
    return await wait_until_resumed(ctx, row.id)


async def wait_until_resumed(ctx: AppContext, task_id: uuid.UUID, seconds: float = 2.0) -> Command:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    row = await reload(ctx, task_id)
    while row.status == "awaiting_input" and loop.time() < deadline:
        await asyncio.sleep(0.05)
        row = await reload(ctx, task_id)
    return row


async def steer(ctx: AppContext, row: Command, message: Any) -> Command:
    """A person's message to a queued or running task: queued to its conversation, read by the runner
    at its next step. A task waiting for an answer must get that answer (`requestId`) instead."""
    if row.status == "awaiting_input":
        raise Conflict(
            "The task waits for an answer to its input request: send it with requestId",
            code="task.input_request_mismatch",
            details={"taskId": str(row.id), "pendingRequestId": (row.input_request or {}).get("id")},
        )
    if row.status not in ("queued", "running"):
        raise not_running(row, "The task is not running")
    async with ctx.db.transaction() as s:
        await conversations.append(
            s, row.conversation_id, row.id, "steer", {"role": "user", "input": message}, pending=True
        )
    events.emit(ctx, row, "task.input", {"kind": "steer"})
    return await reload(ctx, row.id)


async def agent_ids_for(ctx: AppContext, p: Principal, ref: str, space: Space | None) -> list[uuid.UUID]:
    """A list filter's agent: its id, or the ids of the agents so named (in the space when given)."""
    parsed = ids.parse_uuid(ref)
    if parsed is not None:
        return [parsed]
    stmt = select(Agent.id).where(Agent.account_id == p.account_id, Agent.name == ref)
    if space is not None:
        stmt = stmt.where(Agent.space_id == space.id)
    async with ctx.db.read() as s:
        return list((await s.execute(stmt)).scalars())

"""A2A 1.0 over tasks: an agent answers the Agent2Agent protocol with the same task records `/v1/tasks`
serves (an A2A Task is one of our tasks, its `contextId` our conversation).

What the protocol's objects are here:
- `SendMessage` starts a task of the agent (the message's parts are the task's input; `contextId`
  continues that conversation; `metadata.browserId` names the browser it drives, `metadata.spaceId`
  its space) or, with `taskId`, answers the task's pending input request (INPUT_REQUIRED) or steers it
  (SUBMITTED, WORKING: the runner reads the message at its next step). Blocking unless
  `returnImmediately`: it returns when the task has ended or asks for input.
- The task's state: queued SUBMITTED, running (and cancelling) WORKING, awaiting_input INPUT_REQUIRED
  (the status message says what is asked, its data part the request), succeeded COMPLETED (the output is
  the artifact `output`), failed and timed out FAILED (the status message names the error code),
  cancelled CANCELED.
- `ListTasks` lists the agent's tasks by their last update, newest first (the protocol's order).

Protocol errors are `A2AError` (a JSON-RPC code, a message, `data` details); the JSON-RPC envelope is
the route's (app/current/a2a.py)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from app.accounts.service import Principal
from app.agents.models import Agent
from app.core import clock
from app.core.context import AppContext
from app.core.errors import CURRENT_CODES, DomainError
from app.core.paging import decode_cursor, encode_cursor
from app.runs.command_models import TERMINAL_STATUSES, Command
from app.tasks import service as tasks

PROTOCOL_VERSION = "1.0"
# How long a blocking SendMessage waits for the task to end or ask for input before it answers with the
# task as it is (still working): past this the caller polls with GetTask.
BLOCKING_WAIT_MS = 300_000
# How long CancelTask waits for the runner to stop before it answers with the task as it is.
CANCEL_WAIT_MS = 10_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MEDIA_TYPES = ("text/plain", "application/json")
ERROR_DOMAIN = "bctrl"

STATE_OF = {
    "queued": "TASK_STATE_SUBMITTED",
    "running": "TASK_STATE_WORKING",
    "cancelling": "TASK_STATE_WORKING",
    "awaiting_input": "TASK_STATE_INPUT_REQUIRED",
    "succeeded": "TASK_STATE_COMPLETED",
    "failed": "TASK_STATE_FAILED",
    "timed_out": "TASK_STATE_FAILED",
    "cancelled": "TASK_STATE_CANCELED",
}
# The protocol's states and the internal statuses each covers (REJECTED and AUTH_REQUIRED: none).
STATUSES_OF: dict[str, tuple[str, ...]] = {
    "TASK_STATE_SUBMITTED": ("queued",),
    "TASK_STATE_WORKING": ("running", "cancelling"),
    "TASK_STATE_INPUT_REQUIRED": ("awaiting_input",),
    "TASK_STATE_COMPLETED": ("succeeded",),
    "TASK_STATE_FAILED": ("failed", "timed_out"),
    "TASK_STATE_CANCELED": ("cancelled",),
    "TASK_STATE_REJECTED": (),
    "TASK_STATE_AUTH_REQUIRED": (),
}

# JSON-RPC 2.0 and A2A 1.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
PUSH_NOTIFICATION_NOT_SUPPORTED = -32003
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005
VERSION_NOT_SUPPORTED = -32009


class A2AError(Exception):
    """A JSON-RPC error: `code`, `message`, `data` (a list of google.rpc detail objects)."""

    def __init__(self, code: int, message: str, data: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"data": self.data} if self.data else {})}


def error_info(reason: str, metadata: dict[str, Any] | None = None, domain: str = ERROR_DOMAIN) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain}
    if metadata:
        info["metadata"] = {k: v if isinstance(v, str) else str(v) for k, v in metadata.items()}
    return info


def bad_request(field: str, description: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": field, "description": description}],
    }


def invalid_params(field: str, description: str) -> A2AError:
    return A2AError(INVALID_PARAMS, f"Invalid parameters: {field}: {description}", [bad_request(field, description)])


def task_not_found(task_id: object) -> A2AError:
    return A2AError(
        TASK_NOT_FOUND,
        "Task not found",
        [error_info("TASK_NOT_FOUND", {"taskId": task_id}, domain="a2a-protocol.org")],
    )


def of_domain(error: DomainError) -> A2AError:
    """Our refusal as a JSON-RPC error: task.not_found is TaskNotFoundError; other bad input (a 400, or a
    named resource that does not exist) is invalid params; the rest (a held browser, a limit) is a server
    error. `data` carries our stable code (the current generation's spelling) as an ErrorInfo reason."""
    details = {**(error.details or {}), "httpStatus": error.status}
    info = error_info(CURRENT_CODES.get(error.code, error.code), details)
    if error.code == "task.not_found":
        return A2AError(TASK_NOT_FOUND, error.message, [info])
    if error.status in (400, 404, 413, 422):
        return A2AError(INVALID_PARAMS, error.message, [info])
    return A2AError(SERVER_ERROR, error.message, [info])


# --- what a message gives a task ---


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A `SendMessage` as our words: the task's input (or the answer), where it runs, how to answer."""

    input: Any
    answer: Any
    task_id: str | None
    context_id: str | None
    metadata: dict[str, Any] | None
    space_ref: str | None
    return_immediately: bool
    history_length: int | None


def input_of(parts: list[dict[str, Any]]) -> tuple[Any, Any]:
    """(the task's input, the value of an answer) of a message's parts: one text part is a string; one data
    part is its value as an answer; several are the task's input parts in order. Files (`url`, `raw`)
    are not taken: ContentTypeNotSupportedError."""
    converted: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        if "text" in part:
            converted.append({"type": "text", "text": part["text"]})
        elif "data" in part:
            converted.append({"type": "json", "data": part["data"]})
        else:
            kind = "url" if "url" in part else "raw"
            raise A2AError(
                CONTENT_TYPE_NOT_SUPPORTED,
                f"Message part {i} is a file ({kind}); this agent takes text and data parts",
                [error_info("CONTENT_TYPE_NOT_SUPPORTED", {"part": i, "mediaType": part.get("mediaType") or ""})],
            )
    if len(converted) == 1 and converted[0]["type"] == "text":
        return converted[0]["text"], converted[0]["text"]
    if len(converted) == 1:
        return converted, converted[0]["data"]
    return converted, [p.get("text", p.get("data")) for p in converted]


# --- a task as the protocol's Task ---


def _parts_of(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"text": value}]
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") in ("text", "json") for p in value):
        return [{"text": p["text"]} if p["type"] == "text" else {"data": p.get("data")} for p in value]
    return [{"data": value, "mediaType": "application/json"}]


def _status_message(row: Command) -> dict[str, Any] | None:
    base = {"messageId": f"{row.id}-status", "taskId": str(row.id), "role": "ROLE_AGENT"}
    if row.conversation_id is not None:
        base["contextId"] = str(row.conversation_id)
    if row.status == "awaiting_input" and row.input_request:
        request = row.input_request
        summary = request.get("summary") or request.get("prompt") or "Input required"
        return {**base, "parts": [{"text": summary}, {"data": {"inputRequest": request}}]}
    if row.status in ("failed", "timed_out", "cancelled") and row.error:
        code = row.error.get("code") or ("task.timed_out" if row.status == "timed_out" else "task.failed")
        return {
            **base,
            "parts": [{"text": row.error.get("message") or code}],
            "metadata": {"errorCode": code},
        }
    return None


def task_out(row: Command, history_length: int | None = None, include_artifacts: bool = True) -> dict[str, Any]:
    """The protocol's Task of one of our tasks (ProtoJSON: camelCase, enum names)."""
    status: dict[str, Any] = {
        "state": STATE_OF.get(row.status, "TASK_STATE_UNSPECIFIED"),
        "timestamp": clock.iso(row.updated_at or row.finished_at or row.started_at or row.created_at),
    }
    if (message := _status_message(row)) is not None:
        status["message"] = message
    out: dict[str, Any] = {"id": str(row.id), "status": status}
    if row.conversation_id is not None:
        out["contextId"] = str(row.conversation_id)
    if include_artifacts:
        out["artifacts"] = (
            [{"artifactId": f"{row.id}-output", "name": "output", "parts": _parts_of(row.output)}]
            if row.status == "succeeded" and row.output is not None
            else []
        )
    if history_length != 0 and row.task_input is not None:
        history = [
            {
                "messageId": f"{row.id}-input",
                "taskId": str(row.id),
                "role": "ROLE_USER",
                "parts": _parts_of(row.task_input),
                **({"contextId": str(row.conversation_id)} if row.conversation_id else {}),
            }
        ]
        out["history"] = history[-history_length:] if history_length else history
    out["metadata"] = {
        **(row.task_metadata or {}),
        "bctrl": {
            "agentId": str(row.agent_id) if row.agent_id else None,
            "versionId": str(row.agent_version_id) if row.agent_version_id else None,
            "version": row.agent_version,
            "spaceId": str(row.space_id),
            "status": "canceled" if row.status == "cancelled" else row.status,
            "runs": list(row.run_ids or []),
            "traceId": row.trace_id,
            **({"errorCode": (row.error or {}).get("code")} if row.error else {}),
        },
    }
    return out


# --- the operations ---


async def _task_of(ctx: AppContext, p: Principal, agent_id: uuid.UUID, task_id: str) -> Command:
    try:
        row = await tasks.get(ctx, p, task_id)
    except DomainError as error:
        if error.status == 404:
            raise task_not_found(task_id) from None
        raise
    if row.agent_id != agent_id:
        raise task_not_found(task_id)
    return row


async def _finish_wait(ctx: AppContext, row: Command, immediately: bool) -> Command:
    if immediately or row.status in TERMINAL_STATUSES:
        return row
    return await tasks.wait(ctx, row, BLOCKING_WAIT_MS)


async def _past_request(ctx: AppContext, task_id: uuid.UUID, request_id: str) -> None:
    """Until the runner has taken the answer to `request_id` (the task runs on, ended, or asks anew): a
    blocking answer must not come back with the question it just answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BLOCKING_WAIT_MS / 1000
    while loop.time() < deadline:
        row = await tasks.reload(ctx, task_id)
        if row.status != "awaiting_input" or str((row.input_request or {}).get("id")) != request_id:
            return
        await asyncio.sleep(0.1)


async def send(ctx: AppContext, p: Principal, agent: Agent, message: Outgoing) -> Command:
    """Start a task of the agent with the message (in the agent's space unless the context or
    `spaceId` says otherwise), or answer or steer the task `taskId`."""
    agent_id = agent.id
    try:
        if message.task_id is None:
            space_ref = message.space_ref
            if space_ref is None and message.context_id is None:
                space_ref = str(agent.space_id)
            spec = tasks.TaskSpec(
                agent=str(agent_id),
                input=message.input,
                version=None,
                conversation=message.context_id,
                metadata=message.metadata,
                output_schema=None,
                space_ref=space_ref,
            )
            row = await tasks.create(ctx, p, spec)
            return await _finish_wait(ctx, row, message.return_immediately)
        row = await _task_of(ctx, p, agent_id, message.task_id)
        if message.context_id is not None and message.context_id != str(row.conversation_id):
            raise invalid_params("message.contextId", "is not the context of the task named by message.taskId")
        if row.status in TERMINAL_STATUSES:
            raise A2AError(
                UNSUPPORTED_OPERATION,
                f"Task {row.id} has ended ({STATE_OF.get(row.status)}); it takes no more messages",
                [error_info("TASK_TERMINAL", {"taskId": row.id, "state": STATE_OF.get(row.status)})],
            )
        if row.status == "awaiting_input" and row.input_request:
            answered = str(row.input_request["id"])
            await tasks.answer(ctx, p, row, answered, message.answer)
            if not message.return_immediately:
                await _past_request(ctx, row.id, answered)
        elif row.status in ("queued", "running"):
            await tasks.steer(ctx, row, message.input)
        else:
            raise A2AError(
                UNSUPPORTED_OPERATION,
                f"Task {row.id} is being canceled; it takes no more messages",
                [error_info("TASK_NOT_RUNNING", {"taskId": row.id, "state": STATE_OF.get(row.status)})],
            )
        row = await tasks.get(ctx, p, str(row.id))
        return await _finish_wait(ctx, row, message.return_immediately)
    except DomainError as error:
        raise of_domain(error) from None


async def get(ctx: AppContext, p: Principal, agent_id: uuid.UUID, task_id: str) -> Command:
    return await _task_of(ctx, p, agent_id, task_id)


async def cancel(ctx: AppContext, p: Principal, agent_id: uuid.UUID, task_id: str) -> Command:
    """Cancel a task that has not ended (TaskNotCancelableError otherwise); answers once the runner has
    stopped it, or after CANCEL_WAIT_MS with the task as it is (WORKING while it stops)."""
    row = await _task_of(ctx, p, agent_id, task_id)
    if row.status in TERMINAL_STATUSES:
        raise A2AError(
            TASK_NOT_CANCELABLE,
            f"Task {row.id} has already ended ({STATE_OF.get(row.status)})",
            [error_info("TASK_NOT_CANCELABLE", {"taskId": row.id, "state": STATE_OF.get(row.status)})],
        )
    try:
        await tasks.cancel(ctx, row)
        row = await tasks.get(ctx, p, task_id)
        if row.status not in TERMINAL_STATUSES:
            row = await tasks.wait(ctx, row, CANCEL_WAIT_MS)
            row = await tasks.get(ctx, p, task_id)
    except DomainError as error:
        raise of_domain(error) from None
    return row


@dataclass(frozen=True, slots=True)
class TaskQuery:
    context_id: uuid.UUID | None
    statuses: tuple[str, ...] | None
    page_size: int
    page_token: str | None
    updated_after: datetime | None


@dataclass(frozen=True, slots=True)
class TaskPage:
    rows: list[Command]
    next_page_token: str
    total_size: int


def _last_update():
    return func.coalesce(Command.updated_at, Command.created_at)


async def list_tasks(ctx: AppContext, p: Principal, agent_id: uuid.UUID, query: TaskQuery) -> TaskPage:
    """The agent's tasks (of this account), by last update newest first, one page after `pageToken`."""
    after: tuple[datetime, uuid.UUID] | None = None
    if query.page_token:
        try:
            stamp, last_id = decode_cursor(query.page_token).split("|")
            after = (datetime.fromisoformat(stamp), uuid.UUID(last_id))
        except Exception:
            raise invalid_params("pageToken", "is not a nextPageToken this server gave") from None
    conditions = [
        Command.account_id == p.account_id,
        Command.provider == "agent",
        Command.method == "task",
        Command.agent_id == agent_id,
    ]
    if query.context_id is not None:
        conditions.append(Command.conversation_id == query.context_id)
    if query.statuses is not None:
        conditions.append(Command.status.in_(query.statuses) if query.statuses else Command.id.is_(None))
    if query.updated_after is not None:
        conditions.append(_last_update() > query.updated_after)
    async with ctx.db.read() as s:
        total = (await s.execute(select(func.count()).select_from(Command).where(*conditions))).scalar_one()
        stmt = select(Command).where(*conditions)
        if after is not None:
            stamp, last_id = after
            stmt = stmt.where(or_(_last_update() < stamp, and_(_last_update() == stamp, Command.id < last_id)))
        stmt = stmt.order_by(_last_update().desc(), Command.id.desc()).limit(query.page_size + 1)
        rows = list((await s.execute(stmt)).scalars())
    token = ""
    if len(rows) > query.page_size:
        rows = rows[: query.page_size]
        last = rows[-1]
        stamp = last.updated_at or last.created_at
        token = encode_cursor(f"{stamp.isoformat()}|{last.id}")
    return TaskPage(rows=rows, next_page_token=token, total_size=int(total))

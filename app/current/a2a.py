"""`/v1/agents/{agentId}/a2a`: a hosted agent over the Agent2Agent protocol (A2A 1.0, JSON-RPC binding).

The card (`GET .../a2a/.well-known/agent-card.json`) says where to call and how to authenticate (an API
key as a bearer token); the JSON-RPC endpoint answers SendMessage, GetTask, ListTasks and CancelTask over
the agent's tasks (app/tasks/a2a.py). An unknown agent, a missing key: the current generation's errors
(404 `agent.not_found`, 401). Everything about the call itself (not JSON, not JSON-RPC, an unknown
method, bad params, a task that is not this agent's, an `A2A-Version` other than 1.0) is a JSON-RPC error
with HTTP 200, as the protocol says. Streaming, push notifications and the extended card are not offered
(the card says so; their methods answer UnsupportedOperation / PushNotificationNotSupported)."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.accounts.service import Principal
from app.agents import service as agents
from app.agents.models import Agent
from app.core.context import AppContext
from app.core.errors import DomainError
from app.core.idempotency import Idempotency
from app.core.schemas import errors
from app.current import a2a_schemas as wire
from app.current.a2a_schemas import A2ACardOut, A2AJsonRpcOut
from app.tasks import a2a

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/agents/{agent_id}/a2a", tags=["agents"])
routers = (router,)

MAX_BODY_BYTES = 1_000_000
SUPPORTED_VERSIONS = (a2a.PROTOCOL_VERSION,)
STREAMING_METHODS = ("SendStreamingMessage", "SubscribeToTask", "GetExtendedAgentCard")
PUSH_METHODS = (
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
)


async def path_agent(ctx: CtxDep, p: PrincipalDep, agent_id: str) -> Agent:
    """The agent the path names, by id (or by name when one agent of the account has it); archived or
    another account's: 404 `agent.not_found`."""
    return await agents.find(ctx, p, agent_id, None)


PathAgent = Annotated[Agent, Depends(path_agent)]


@router.get("/.well-known/agent-card.json", response_model=A2ACardOut, responses=errors(404))
async def agent_card(ctx: CtxDep, agent: PathAgent) -> A2ACardOut:
    """The agent's A2A 1.0 card: its JSON-RPC interface, capabilities (no streaming, no push
    notifications, no extended card), bearer API-key security and one skill (the agent itself)."""
    version = await agents.version_of(ctx, agent)
    description = (agent.metadata_ or {}).get("description")
    return wire.card_of(
        base_url=ctx.settings.resolved_public_url,
        agent_id=str(agent.id),
        name=agent.name,
        description=description if isinstance(description, str) else None,
        version=str(agent.promoted_version),
        tools=list(version.tools or []),
    )


def _call_id(body: dict[str, Any]) -> Any:
    value = body.get("id")
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _version_error(requested: str | None) -> a2a.A2AError | None:
    # No header is 1.0 here, not the spec's 0.3: the official client's rpc() sends none, and 0.3's method
    # names (message/send, ...) are answered as unknown methods anyway. A version named and not 1.x is refused.
    given = (requested or "").strip()
    if not given:
        return None
    major_minor = ".".join(given.split(".")[:2])
    if major_minor in SUPPORTED_VERSIONS:
        return None
    shown = given
    return a2a.A2AError(
        a2a.VERSION_NOT_SUPPORTED,
        f"A2A version {shown} is not supported: send A2A-Version: {a2a.PROTOCOL_VERSION}",
        [
            a2a.error_info(
                "VERSION_NOT_SUPPORTED",
                {"requested": given, "supportedVersions": ",".join(SUPPORTED_VERSIONS)},
                domain="a2a-protocol.org",
            )
        ],
    )


def _envelope_error(body: Any) -> a2a.A2AError | None:
    if isinstance(body, list):
        return a2a.A2AError(a2a.INVALID_REQUEST, "Batch requests are not supported: send one call per request")
    if not isinstance(body, dict):
        return a2a.A2AError(a2a.INVALID_REQUEST, "The request must be a JSON-RPC 2.0 request object")
    if body.get("jsonrpc") != "2.0":
        return a2a.A2AError(a2a.INVALID_REQUEST, 'jsonrpc must be "2.0"')
    method = body.get("method")
    if not isinstance(method, str) or not method:
        return a2a.A2AError(a2a.INVALID_REQUEST, "method must be a non-empty string")
    if "id" not in body:
        return a2a.A2AError(a2a.INVALID_REQUEST, "id is required: every A2A method answers (no notifications)")
    call_id = body["id"]
    if call_id is not None and (isinstance(call_id, bool) or not isinstance(call_id, str | int | float)):
        return a2a.A2AError(a2a.INVALID_REQUEST, "id must be a string, a number or null")
    if isinstance(call_id, str) and len(call_id) > 200:
        return a2a.A2AError(a2a.INVALID_REQUEST, "id is longer than 200 characters")
    return None


async def _dispatch(ctx: AppContext, p: Principal, agent: Agent, method: str, params: Any) -> Any:
    if method == "SendMessage":
        return await _send_message(ctx, p, agent, wire.parse(wire.SendMessageParams, params))
    if method == "GetTask":
        got = wire.parse(wire.GetTaskParams, params)
        row = await a2a.get(ctx, p, agent.id, got.id)
        return a2a.task_out(row, got.history_length)
    if method == "CancelTask":
        cancel = wire.parse(wire.CancelTaskParams, params)
        return a2a.task_out(await a2a.cancel(ctx, p, agent.id, cancel.id))
    if method == "ListTasks":
        return await _list_tasks(ctx, p, agent, wire.parse(wire.ListTasksParams, params))
    if method in STREAMING_METHODS:
        raise a2a.A2AError(
            a2a.UNSUPPORTED_OPERATION,
            f"{method} is not supported: this agent's card declares no streaming and no extended card",
            [a2a.error_info("UNSUPPORTED_OPERATION", {"method": method}, domain="a2a-protocol.org")],
        )
    if method in PUSH_METHODS:
        raise a2a.A2AError(
            a2a.PUSH_NOTIFICATION_NOT_SUPPORTED,
            "Push notifications are not supported: poll with GetTask",
            [a2a.error_info("PUSH_NOTIFICATION_NOT_SUPPORTED", {"method": method}, domain="a2a-protocol.org")],
        )
    raise a2a.A2AError(
        a2a.METHOD_NOT_FOUND,
        f"Method not found: {method[:100]}",
        [a2a.error_info("METHOD_NOT_FOUND", {"supported": "SendMessage,GetTask,ListTasks,CancelTask"})],
    )


async def _send_message(ctx: AppContext, p: Principal, agent: Agent, params: wire.SendMessageParams) -> Any:
    config = params.configuration or wire.Configuration()
    if config.task_push_notification_config is not None:
        raise a2a.A2AError(
            a2a.PUSH_NOTIFICATION_NOT_SUPPORTED,
            "Push notifications are not supported: leave configuration.taskPushNotificationConfig out",
            [a2a.error_info("PUSH_NOTIFICATION_NOT_SUPPORTED", domain="a2a-protocol.org")],
        )
    accepted = config.accepted_output_modes
    if accepted and not any(m in a2a.MEDIA_TYPES or m in ("*/*", "text/*", "application/*") for m in accepted):
        raise a2a.A2AError(
            a2a.CONTENT_TYPE_NOT_SUPPORTED,
            f"This agent answers {', '.join(a2a.MEDIA_TYPES)}; none of acceptedOutputModes",
            [a2a.error_info("CONTENT_TYPE_NOT_SUPPORTED", {"acceptedOutputModes": ",".join(accepted)})],
        )
    message = params.message
    metadata = {**(params.metadata or {}), **(message.metadata or {})}
    space_ref = metadata.pop("spaceId", None)
    if space_ref is not None and (not isinstance(space_ref, str) or not space_ref or len(space_ref) > 200):
        raise a2a.invalid_params("message.metadata.spaceId", "must be a space's id")
    task_input, value = a2a.input_of([part.model_dump(exclude_unset=True, by_alias=True) for part in message.parts])
    if message.task_id is not None and metadata.get("browserId") is not None:
        raise a2a.invalid_params("message.metadata.browserId", "names the browser of a new task, not of a reply")
    outgoing = a2a.Outgoing(
        input=task_input,
        answer=value,
        task_id=message.task_id,
        context_id=message.context_id,
        metadata=metadata or None,
        space_ref=space_ref,
        return_immediately=config.return_immediately,
        history_length=config.history_length,
    )
    row = await a2a.send(ctx, p, agent, outgoing)
    return {"task": a2a.task_out(row, config.history_length)}


async def _list_tasks(ctx: AppContext, p: Principal, agent: Agent, params: wire.ListTasksParams) -> Any:
    context_id = None
    if params.context_id:
        try:
            context_id = uuid.UUID(params.context_id)
        except ValueError:
            raise a2a.invalid_params("contextId", "is not a context id this agent gave") from None
    statuses = None
    if params.status is not None and params.status != "TASK_STATE_UNSPECIFIED":
        statuses = a2a.STATUSES_OF[params.status]
    page_size = params.page_size or a2a.DEFAULT_PAGE_SIZE
    query = a2a.TaskQuery(
        context_id=context_id,
        statuses=statuses,
        page_size=page_size,
        page_token=params.page_token or None,
        updated_after=params.status_timestamp_after,
    )
    page = await a2a.list_tasks(ctx, p, agent.id, query)
    return {
        "tasks": [a2a.task_out(r, params.history_length, bool(params.include_artifacts)) for r in page.rows],
        "nextPageToken": page.next_page_token,
        "pageSize": page_size,
        "totalSize": page.total_size,
    }


class _Refused(Exception):
    def __init__(self, error: a2a.A2AError) -> None:
        super().__init__(error.message)
        self.error = error


class _KeyRefused(Exception):
    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


async def _send_once(
    ctx: AppContext, p: Principal, agent: Agent, idem: Idempotency, call_id: Any, params: Any
) -> dict[str, Any]:
    """SendMessage under an Idempotency-Key: the first call's successful answer is kept and a retry with
    the same params gets it again (with its own `id`), making no second task; a refusal keeps nothing."""

    async def make() -> wire.A2AJsonRpcResult:
        try:
            return wire.A2AJsonRpcResult(id=call_id, result=await _dispatch(ctx, p, agent, "SendMessage", params))
        except DomainError as error:
            raise _Refused(a2a.of_domain(error)) from None
        except a2a.A2AError as error:
            raise _Refused(error) from None

    try:
        made = await idem.once(make, {"method": "SendMessage", "params": params})
    except _Refused as refused:
        raise refused.error from None
    except DomainError as error:
        # What the key itself is refused for (reused with other params, still in progress, malformed) is
        # the documented HTTP answer (409, 400), not a JSON-RPC error: it is about the header, not the call.
        raise _KeyRefused(error) from None
    if isinstance(made, JSONResponse):  # a replay of the stored answer
        return {**orjson.loads(made.body), "id": call_id}
    return made.model_dump(mode="json")


_RPC_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "jsonrpc": {"enum": ["2.0"]},
                    "id": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
                    "method": {
                        "type": "string",
                        "examples": ["SendMessage", "GetTask", "ListTasks", "CancelTask"],
                    },
                    "params": {"type": "object"},
                },
                "required": ["jsonrpc", "id", "method"],
            }
        }
    },
}


@router.post("", response_model=A2AJsonRpcOut, responses=errors(404), openapi_extra={"requestBody": _RPC_BODY})
async def agent_rpc(
    request: Request,
    ctx: CtxDep,
    p: PrincipalDep,
    agent: PathAgent,
    idem: IdempotencyDep,
    a2a_version: Annotated[str | None, Header(alias="A2A-Version", max_length=20)] = None,
    a2a_version_query: Annotated[str | None, Query(alias="A2A-Version", max_length=20)] = None,
) -> Any:
    """A2A 1.0 JSON-RPC (send `A2A-Version: 1.0`): SendMessage starts a task of this agent (blocking
    until it ends or asks for input unless `configuration.returnImmediately`; `message.metadata.browserId`
    names the browser it drives) or, with `message.taskId`, answers or steers one; GetTask, ListTasks and
    CancelTask read and cancel this agent's tasks. Errors are JSON-RPC errors with HTTP 200. A SendMessage
    with an `Idempotency-Key` is made once: a retry with the same params gets the first answer."""
    raw = await request.body()
    call_id: Any = None
    try:
        if len(raw) > MAX_BODY_BYTES:
            raise a2a.A2AError(a2a.INVALID_REQUEST, f"The request is larger than {MAX_BODY_BYTES} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise a2a.A2AError(a2a.PARSE_ERROR, "Invalid JSON payload") from None
        if isinstance(body, dict):
            call_id = _call_id(body)
        if problem := _envelope_error(body):
            raise problem
        if problem := _version_error(a2a_version or a2a_version_query):
            raise problem
        method, params = body["method"], body.get("params")
        if method == "SendMessage" and idem.key is not None:
            payload = await _send_once(ctx, p, agent, idem, call_id, params)
        else:
            payload = wire.answer(call_id, await _dispatch(ctx, p, agent, method, params))
    except _KeyRefused as refused:
        raise refused.error from None
    except a2a.A2AError as error:
        payload = wire.failure(call_id, error)
    except DomainError as error:
        payload = wire.failure(call_id, a2a.of_domain(error))
    except Exception:
        log.exception("A2A call failed")
        payload = wire.failure(call_id, a2a.A2AError(a2a.INTERNAL_ERROR, "Internal error"))
    return JSONResponse(payload, headers={"A2A-Version": a2a.PROTOCOL_VERSION})

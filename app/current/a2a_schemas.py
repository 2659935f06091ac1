"""A2A 1.0 wire models of `/v1/agents/{agentId}/a2a`: the agent card (the 0.3 wheel's A2AAgentCard), the
JSON-RPC envelope (A2AJsonRpcResponse) and the params of the methods this server answers (SendMessage,
GetTask, ListTasks, CancelTask), in ProtoJSON spelling (camelCase fields, enum names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from app.core.schemas import WireModel, storable_problem
from app.tasks import a2a

# --- the card ---


class CardInterface(WireModel):
    url: str
    protocol_binding: Literal["JSONRPC"] = "JSONRPC"
    protocol_version: str = a2a.PROTOCOL_VERSION


class CardProvider(WireModel):
    organization: str
    url: str


class CardCapabilities(WireModel):
    streaming: bool = False
    push_notifications: bool = False
    extended_agent_card: bool = False


class CardSkill(WireModel):
    id: str
    name: str
    description: str
    tags: list[str]


class A2ACardOut(WireModel):
    name: str
    description: str
    version: str
    supported_interfaces: list[CardInterface]
    provider: CardProvider
    capabilities: CardCapabilities
    security_schemes: dict[str, Any]
    security_requirements: list[dict[str, Any]]
    default_input_modes: list[str]
    default_output_modes: list[str]
    skills: list[CardSkill]


SECURITY_SCHEME = "bctrlApiKey"


def card_of(
    *, base_url: str, agent_id: str, name: str, description: str | None, version: str, tools: list[str]
) -> A2ACardOut:
    return A2ACardOut(
        name=name,
        description=description or f"The hosted agent {name}: it works in browsers with its tools",
        version=version,
        supported_interfaces=[CardInterface(url=f"{base_url}/v1/agents/{agent_id}/a2a")],
        provider=CardProvider(organization="bctrl (self-hosted)", url=base_url),
        capabilities=CardCapabilities(),
        security_schemes={
            SECURITY_SCHEME: {
                "httpAuthSecurityScheme": {
                    "scheme": "Bearer",
                    "description": "An API key of the agent's account: Authorization: Bearer <key>",
                }
            }
        },
        security_requirements=[{"schemes": {SECURITY_SCHEME: {"list": []}}}],
        default_input_modes=list(a2a.MEDIA_TYPES),
        default_output_modes=list(a2a.MEDIA_TYPES),
        skills=[
            CardSkill(
                id=name,
                name=name,
                description=description or f"Runs the agent {name} on the message as a task",
                tags=sorted({t.split(".")[0] for t in tools}) or ["agent"],
            )
        ],
    )


# --- the JSON-RPC envelope ---

JsonRpcId = StrictStr | StrictInt | float | None


class A2AResponseError(BaseModel):
    code: int
    message: str
    data: Any = None


class A2AJsonRpcOut(BaseModel):
    """The answer to every call, HTTP 200: `result` or `error`, and the call's `id`."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: JsonRpcId = None
    result: Any = None
    error: A2AResponseError | None = None


class A2AJsonRpcResult(BaseModel):
    """A successful answer as an Idempotency-Key keeps it (a replay answers the retry's own `id`)."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: JsonRpcId = None
    result: Any = None


def answer(call_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": result}


def failure(call_id: Any, error: a2a.A2AError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": error.body()}


# --- params ---


class Params(BaseModel):
    """Method params: ProtoJSON field names; unknown fields are ignored (the protocol lets a newer client
    send what an older server does not know), wrong types are InvalidParams naming the field."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="ignore")


Metadata = dict[str, Any]
M = TypeVar("M", bound="Params")


class Part(Params):
    text: StrictStr | None = None
    data: Any = None
    url: StrictStr | None = None
    raw: StrictStr | None = None
    media_type: StrictStr | None = None
    filename: StrictStr | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Part:
        given = [k for k in ("text", "data", "url", "raw") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("a part has exactly one of text, data, url, raw")
        if given == ["data"] and self.data is None:
            raise ValueError("data must not be null")
        return self


class Message(Params):
    message_id: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    role: Literal["ROLE_USER"]
    parts: Annotated[list[Part], Field(min_length=1, max_length=100)]
    context_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    task_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    metadata: Metadata | None = None


class Configuration(Params):
    accepted_output_modes: list[StrictStr] | None = None
    task_push_notification_config: dict[str, Any] | None = None
    history_length: Annotated[StrictInt, Field(ge=0)] | None = None
    return_immediately: StrictBool = False


class SendMessageParams(Params):
    message: Message
    configuration: Configuration | None = None
    metadata: Metadata | None = None
    tenant: StrictStr | None = None


class GetTaskParams(Params):
    id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    history_length: Annotated[StrictInt, Field(ge=0)] | None = None
    tenant: StrictStr | None = None


class CancelTaskParams(Params):
    id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    metadata: Metadata | None = None
    tenant: StrictStr | None = None


TaskStateName = Literal[
    "TASK_STATE_SUBMITTED",
    "TASK_STATE_WORKING",
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_INPUT_REQUIRED",
    "TASK_STATE_REJECTED",
    "TASK_STATE_AUTH_REQUIRED",
]


class ListTasksParams(Params):
    context_id: Annotated[StrictStr, Field(max_length=64)] | None = None
    status: TaskStateName | Literal["TASK_STATE_UNSPECIFIED"] | None = None
    page_size: Annotated[StrictInt, Field(ge=1, le=a2a.MAX_PAGE_SIZE)] | None = None
    page_token: Annotated[StrictStr, Field(max_length=500)] | None = None
    history_length: Annotated[StrictInt, Field(ge=0)] | None = None
    status_timestamp_after: datetime | None = None
    include_artifacts: StrictBool | None = None
    tenant: StrictStr | None = None


def _field_of(loc: tuple[Any, ...]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif not str(item).startswith(("function-", "literal[", "constrained-")) and "[" not in str(item):
            out += ("." if out else "") + str(item)
    return out or "params"


def parse(model: type[M], params: Any) -> M:
    """The method's params, or InvalidParams naming each bad field (google.rpc.BadRequest)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise a2a.invalid_params("params", "must be an object")
    if found := storable_problem(params, "params"):
        where, what = found
        raise a2a.invalid_params(where, what)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        violations = []
        for err in exc.errors(include_url=False):
            violations.append({"field": _field_of(tuple(err["loc"])), "description": err["msg"]})
        first = violations[0]
        raise a2a.A2AError(
            a2a.INVALID_PARAMS,
            f"Invalid parameters: {first['field']}: {first['description']}",
            [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}],
        ) from None

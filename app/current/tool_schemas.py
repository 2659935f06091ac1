"""`/v1/tools` wire models (the 0.3 wheel's Tool = BuiltinTool | CustomTool, ToolCreateRequest,
ToolUpdateRequest, ToolListResponse, ToolDeleteResponse).

Custom tools are webhooks only: a `code` or `workflow` implementation is 400
`tool.implementation_unsupported`; `runtimeTypes` other than `browser` is 400
`tool.runtime_type_unsupported`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from app.core.errors import InvalidRequest
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.tools import service
from app.tools.catalog import CATALOG_DATE, BuiltinTool
from app.tools.models import CustomTool
from app.tools.service import WebhookSpec

# `desktop` is refused with its own code (tool.runtime_type_unsupported), so the schema names browser only.
RuntimeType = Literal["browser"]


def implementation_unsupported(kind: Any) -> InvalidRequest:
    why = "custom tools on this server are webhooks (type webhook: url, timeoutMs, authSecret)"
    return InvalidRequest(
        f"implementation.type {str(kind)[:40]!r} is not supported: {why}",
        code="tool.implementation_unsupported",
        details={"fields": [{"field": "implementation.type", "in": "body", "message": why, "type": "unsupported"}]},
    )


def _refuse_unsupported(data: Any) -> Any:
    """The tools' own codes before the schema's generic ones."""
    if not isinstance(data, dict):
        return data
    impl = data.get("implementation")
    if isinstance(impl, dict) and impl.get("type") != "webhook":
        raise implementation_unsupported(impl.get("type"))
    kinds = data.get("runtimeTypes")
    if isinstance(kinds, list) and any(k != "browser" for k in kinds if isinstance(k, str)):
        why = "tools here run beside browsers only: runtimeTypes [browser]"
        raise InvalidRequest(
            f"runtimeTypes: {why}",
            code="tool.runtime_type_unsupported",
            details={"fields": [{"field": "runtimeTypes", "in": "body", "message": why, "type": "unsupported"}]},
        )
    return data


class WebhookIn(RequestModel):
    type: Literal["webhook"]
    url: str = Field(
        max_length=2048,
        pattern=service.URL_PATTERN,
        description="http(s) URL the call is POSTed to (no credentials in it: use authSecret)",
        examples=["https://hooks.example.com/price"],
    )
    timeout_ms: int | None = Field(
        default=None, ge=service.MIN_TIMEOUT_MS, le=service.MAX_TIMEOUT_MS, description="Default 30000"
    )
    auth_secret: str | None = Field(
        default=None,
        max_length=service.SECRET_REF_MAX,
        pattern=service.SECRET_REF_PATTERN,
        description="Vault reference of the signing key, e.g. `secret:webhooks/crm#value`, resolved when the "
        "tool runs; without it the calls are signed with a key the server generated and keeps sealed",
    )


RuntimeTypes = Annotated[list[RuntimeType], Field(max_length=2)]


class ToolCreate(RequestModel):
    name: str = Field(
        pattern=service.NAME_PATTERN,
        description="Letters, digits, _ and -, starting with a letter (built-in names have a dot)",
        examples=["price_lookup"],
    )
    description: str | None = Field(default=None, max_length=4000)
    implementation: WebhookIn
    input_schema: JsonObject
    output_schema: JsonObject
    runtime_types: RuntimeTypes | None = None
    space_id: str | None = Field(default=None, max_length=64, description="Space id or `default`")

    @model_validator(mode="before")
    @classmethod
    def _codes_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            service.check_name(data["name"])  # the tools' own code before the schema's generic one
        return _refuse_unsupported(data)

    def spec(self) -> WebhookSpec:
        return WebhookSpec(
            name=self.name,
            description=self.description,
            url=self.implementation.url,
            timeout_ms=self.implementation.timeout_ms,
            auth_secret=self.implementation.auth_secret,
            auth_secret_given=True,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            runtime_types=self.runtime_types,
        )


class ToolUpdate(RequestModel):
    """Fields given are changed; within `implementation`, an omitted `timeoutMs` or `authSecret` keeps
    its value (`authSecret: null` removes it)."""

    current_revision_id: str = Field(min_length=1, max_length=64, description="The revision you read")
    description: str | None = Field(default=None, max_length=4000)
    implementation: WebhookIn | None = None
    input_schema: JsonObject | None = None
    output_schema: JsonObject | None = None
    runtime_types: RuntimeTypes | None = None

    @model_validator(mode="before")
    @classmethod
    def _codes_first(cls, data: Any) -> Any:
        return _refuse_unsupported(data)

    def spec(self) -> WebhookSpec:
        impl = self.implementation
        return WebhookSpec(
            description=self.description,
            url=None if impl is None else impl.url,
            timeout_ms=None if impl is None else impl.timeout_ms,
            auth_secret=None if impl is None else impl.auth_secret,
            auth_secret_given=impl is not None and "auth_secret" in impl.model_fields_set,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            runtime_types=self.runtime_types,
        )


class BuiltinImplementationOut(WireModel):
    type: Literal["builtin"] = "builtin"
    name: str


class WebhookOut(WireModel):
    type: Literal["webhook"] = "webhook"
    url: str
    timeout_ms: int
    auth_secret: str | None = None


class BuiltinToolOut(WireModel):
    id: str
    object: Literal["tool"] = "tool"
    name: str
    description: str
    implementation: BuiltinImplementationOut
    input_schema: JsonObject
    output_schema: JsonObject
    runtime_types: list[str]
    space_id: None = None
    current_revision_id: None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, tool: BuiltinTool) -> BuiltinToolOut:
        return cls(
            id=tool.name,
            name=tool.name,
            description=tool.description,
            implementation=BuiltinImplementationOut(name=tool.name),
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            runtime_types=list(tool.runtime_types),
            created_at=CATALOG_DATE,
            updated_at=CATALOG_DATE,
        )


class CustomToolOut(WireModel):
    id: str
    object: Literal["tool"] = "tool"
    name: str
    description: str
    implementation: WebhookOut
    input_schema: JsonObject
    output_schema: JsonObject
    runtime_types: list[str]
    space_id: str
    current_revision_id: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: CustomTool) -> CustomToolOut:
        return cls(
            id=str(row.id),
            name=row.name,
            description=row.description,
            implementation=WebhookOut(url=row.url, timeout_ms=row.timeout_ms, auth_secret=row.auth_secret),
            input_schema=row.input_schema,
            output_schema=row.output_schema,
            runtime_types=list(row.runtime_types),
            space_id=str(row.space_id),
            current_revision_id=str(row.revision_id),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


ToolOut = BuiltinToolOut | CustomToolOut


def tool_out(tool: BuiltinTool | CustomTool) -> BuiltinToolOut | CustomToolOut:
    return BuiltinToolOut.of(tool) if isinstance(tool, BuiltinTool) else CustomToolOut.of(tool)


class ToolPage(WireModel):
    data: list[BuiltinToolOut | CustomToolOut]
    has_more: bool
    next_cursor: str | None = None


class ToolDeletedOut(WireModel):
    id: str
    object: Literal["tool"] = "tool"
    deleted: Literal[True] = True

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from app.ai.models import AiConnection
from app.core.schemas import NOT_BLANK, RequestModel, Timestamp, WireModel, list_model

Provider = Literal["openai", "openai-compatible", "anthropic"]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NOT_BLANK]
Model = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NOT_BLANK]
# What _check_url() accepts, for the API description.
BaseUrl = Annotated[str, Field(json_schema_extra={"pattern": r"^https?://[^ /][^ ]*$", "maxLength": 2048})]
ApiKey = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) > 2048 or " " in value:
        raise ValueError("must be an http:// or https:// URL")
    return value


class AiConnectionCreate(RequestModel):
    # The service refuses an openai-compatible connection without its baseUrl; the description says so.
    model_config = {
        **RequestModel.model_config,
        "json_schema_extra": {
            "if": {"properties": {"provider": {"const": "openai-compatible"}}, "required": ["provider"]},
            "then": {"required": ["baseUrl"], "properties": {"baseUrl": {"type": "string"}}},
        },
    }
    label: Label
    provider: Provider
    base_url: BaseUrl | None = Field(default=None, description="Required for openai-compatible; defaults otherwise")
    api_key: ApiKey | None = Field(default=None, description="Write-only; stored encrypted, never returned")
    default_model: Model | None = None
    enabled: bool = True

    _url = field_validator("base_url")(classmethod(lambda cls, v: _check_url(v)))


class AiConnectionUpdate(RequestModel):
    label: Label | None = None
    base_url: BaseUrl | None = None
    api_key: ApiKey | None = Field(default=None, description="A new key; null removes the stored one")
    default_model: Model | None = None
    enabled: bool | None = None

    _url = field_validator("base_url")(classmethod(lambda cls, v: _check_url(v)))


class AiConnectionOut(WireModel):
    id: str
    label: str
    provider: str
    base_url: str | None
    enabled: bool
    has_stored_key: bool
    default_model: str | None
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, c: AiConnection) -> AiConnectionOut:
        return cls(
            id=str(c.id),
            label=c.label,
            provider=c.provider,
            base_url=c.base_url,
            enabled=c.enabled,
            has_stored_key=c.api_key_encrypted is not None,
            default_model=c.default_model,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


AiConnectionList = list_model(AiConnectionOut, "aiConnections")


class AiConnectionTest(WireModel):
    ok: bool
    message: str
    provider: str

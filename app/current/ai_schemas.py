"""Wire models of the current generation for AI credentials and models (the 0.3 wheel's
`AiCredential`, `AiCredentialTestResponse`, `AiModel` and their requests)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from app.ai.catalog import ModelInfo
from app.ai.models import AiConnection
from app.ai.schemas import ApiKey, BaseUrl, Label, Model, _check_url
from app.ai.service import CheckResult
from app.core.errors import InvalidRequest
from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import page_model

CredentialProvider = Literal[
    "openai",
    "anthropic",
    "google",
    "azure",
    "groq",
    "deepseek",
    "mistral",
    "cerebras",
    "openrouter",
    "xai",
    "perplexity",
    "togetherai",
    "vercel-ai-gateway",
    "custom",
]
ModelProvider = Literal[
    "openai",
    "anthropic",
    "google",
    "azure",
    "groq",
    "deepseek",
    "mistral",
    "cerebras",
    "openrouter",
    "xai",
    "perplexity",
    "togetherai",
    "minimax",
    "tencent",
    "xiaomi",
    "z-ai",
    "mistralai",
    "moonshotai",
    "meta-llama",
    "vercel-ai-gateway",
    "custom",
]
CredentialStatus = Literal["enabled", "disabled"]
ModelStatus = Literal["recommended", "supported", "experimental"]

# The current generation's `custom` is the earlier generations' `openai-compatible` (the stored word).
_STORED = {"custom": "openai-compatible"}
_SHOWN = {stored: word for word, stored in _STORED.items()}


def stored_provider(word: str) -> str:
    return _STORED.get(word, word)


def shown_provider(stored: str) -> str:
    return _SHOWN.get(stored, stored)


def _usable_url(value: str | None) -> str | None:
    """What the earlier generations accept, and also a URL the server can call: printable, with a host."""
    value = _check_url(value)
    if value is None:
        return None
    try:
        host = httpx.URL(value).host
    except (httpx.InvalidURL, ValueError):
        host = ""
    if not host or not value.isprintable():
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _refuse_references(data: Any) -> Any:
    key = data.get("apiKey", data.get("api_key")) if isinstance(data, dict) else None
    if isinstance(key, str) and key.startswith("secret:"):
        why = "secret references are not offered by this server; pass the key itself (it is stored encrypted)"
        raise InvalidRequest(
            f"apiKey: {why}",
            code="ai_credential.api_key_reference_unsupported",
            details={"fields": [{"field": "apiKey", "in": "body", "message": why, "type": "unsupported"}]},
        )
    return data


class AiCredentialCreate(RequestModel):
    provider: CredentialProvider
    api_key: ApiKey | None = Field(default=None, description="Write-only; stored encrypted, never returned")
    base_url: BaseUrl | None = Field(default=None, description="Required for custom; the provider's otherwise")
    default_model: Model | None = None
    name: Label | None = Field(default=None, description="Defaults to the provider and the id's last 8 hex")
    status: CredentialStatus | None = None
    test: bool | None = Field(default=None, description="Keep it only if its endpoint accepts it")

    _url = field_validator("base_url")(classmethod(lambda cls, v: _usable_url(v)))
    _refs = model_validator(mode="before")(classmethod(lambda cls, data: _refuse_references(data)))


class AiCredentialUpdate(RequestModel):
    api_key: ApiKey | None = Field(default=None, description="A new key; null removes the stored one")
    base_url: BaseUrl | None = None
    default_model: Model | None = None
    name: Label | None = None
    status: CredentialStatus | None = None

    _url = field_validator("base_url")(classmethod(lambda cls, v: _usable_url(v)))
    _refs = model_validator(mode="before")(classmethod(lambda cls, data: _refuse_references(data)))


class AiCredentialOut(WireModel):
    id: str
    object: Literal["ai_credential"] = "ai_credential"
    name: str
    provider: str
    status: CredentialStatus
    has_api_key: bool
    api_key_reference: str | None = None
    base_url: str | None
    default_model: str | None
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: AiConnection) -> AiCredentialOut:
        return cls(
            id=str(row.id),
            name=row.label,
            provider=shown_provider(row.provider),
            status="enabled" if row.enabled else "disabled",
            has_api_key=row.api_key_encrypted is not None,
            base_url=row.base_url,
            default_model=row.default_model,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


AiCredentialPage = page_model(AiCredentialOut)


class AiCredentialDeletedOut(WireModel):
    id: str
    object: Literal["ai_credential"] = "ai_credential"
    deleted: bool = True


class AiCredentialTestOut(WireModel):
    object: Literal["test.result"] = "test.result"
    ok: bool
    checked_at: Timestamp
    latency_seconds: float | None
    error: str | None

    @classmethod
    def of(cls, result: CheckResult) -> AiCredentialTestOut:
        return cls(
            ok=result.ok, checked_at=result.checked_at, latency_seconds=result.latency_seconds, error=result.error
        )


class AiModelOut(WireModel):
    id: str
    object: Literal["ai_model"] = "ai_model"
    provider: str
    display_name: str
    managed: bool = Field(default=False, description="Always false: this server hosts no models of its own")
    status: ModelStatus = Field(default="supported", description="Always supported: endpoints do not rank models")
    supports_tools: bool
    supports_vision: bool
    supports_structured_output: bool
    supports_reasoning_effort: bool
    supports_thinking_budget: bool
    credential_ids: list[str] = Field(description="The saved credentials whose endpoints offer it")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, info: ModelInfo) -> AiModelOut:
        return cls(
            id=info.id,
            provider=shown_provider(info.provider),
            display_name=info.display_name,
            supports_tools=info.supports_tools,
            supports_vision=info.supports_vision,
            supports_structured_output=info.supports_structured_output,
            supports_reasoning_effort=info.supports_reasoning_effort,
            supports_thinking_budget=info.supports_thinking_budget,
            credential_ids=[str(c) for c in info.credential_ids],
            created_at=info.created_at,
            updated_at=info.created_at,
        )


AiModelPage = page_model(AiModelOut)

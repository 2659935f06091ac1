"""Wire models of `/v1/spaces` in the current generation (the 0.3 wheel's `Space`, `EnvironmentMounts`,
`SpaceEnvironmentPatch`). What this server enforces of a space's environment is the AI credential allow
list (`ai.credentialIds`, which invocations honour); every other setting is accepted only at the value
that means what this server does, and refused otherwise (400 `space.option_unsupported`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.core.errors import InvalidRequest
from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import page_model

REGIONS = ("local",)
SpaceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), Field(pattern=r"\S")]
CredentialId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
HostList = list[Annotated[str, StringConstraints(max_length=400)]]


def option_unsupported(field: str, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not supported by this server: {why}",
        code="space.option_unsupported",
        details={"fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}], "value": value},
    )


def _refuse_unsupported(data: Any) -> Any:
    """Settings this server cannot honour, refused by name before the fields are checked."""
    if not isinstance(data, dict):
        return data
    scopes = data.get("capabilityScopes")
    if isinstance(scopes, list) and scopes:
        raise option_unsupported("capabilityScopes", scopes, "capability scopes are not enforced here; send []")
    days = data.get("expireAfterIdleDays")
    if isinstance(days, int) and not isinstance(days, bool) and days != 0:
        raise option_unsupported("expireAfterIdleDays", days, "spaces here do not expire; send 0 (never)")
    region = data.get("region")
    if isinstance(region, str) and region not in REGIONS:
        raise InvalidRequest(
            f"Region {region!r} is not offered by this server; it offers {', '.join(REGIONS)}",
            code="space.region_invalid",
            details={"fields": [{"field": "region", "in": "body", "message": "unknown region", "type": "value"}]},
        )
    env = data.get("environment")
    if not isinstance(env, dict):
        return data
    network = env.get("network")
    if isinstance(network, dict) and any(network.get(k) for k in ("allow", "deny")):
        raise option_unsupported(
            "environment.network", network, "per-space egress host lists are not offered; BCTRL_BROWSER_EGRESS applies"
        )
    secrets = env.get("secrets")
    if isinstance(secrets, dict) and any(secrets.get(k) for k in ("allow", "deny", "env")):
        raise option_unsupported("environment.secrets", secrets, "secret mounts are not enforced here yet")
    if env.get("storage") is not None:
        raise option_unsupported("environment.storage", env["storage"], "storage namespaces are not offered")
    ai = env.get("ai")
    if isinstance(ai, dict) and ai.get("default") is not None:
        raise option_unsupported(
            "environment.ai.default", ai["default"], "a space-wide default model is not offered; name it per task"
        )
    return data


class NetworkIn(RequestModel):
    allow: HostList | None = Field(default=None, max_length=0)
    deny: HostList | None = Field(default=None, max_length=0)


class SecretsIn(RequestModel):
    allow: HostList | None = Field(default=None, max_length=0)
    deny: HostList | None = Field(default=None, max_length=0)
    env: dict[str, str] | None = Field(default=None, max_length=0)


class AiIn(RequestModel):
    credential_ids: list[CredentialId] | None = Field(
        default=None, max_length=100, description="AI credentials runs of this space may use (all when absent)"
    )
    default: None = Field(default=None, description="Not offered here")


class EnvironmentIn(RequestModel):
    ai: AiIn | None = None
    network: NetworkIn | None = Field(default=None, description="Only an open network (no lists) here")
    secrets: SecretsIn | None = Field(default=None, description="No lists here yet")
    storage: None = Field(default=None, description="Not offered here")


class _SpaceSettings(RequestModel):
    capability_scopes: list[str] | None = Field(default=None, max_length=0, description="Not enforced here: []")
    environment: EnvironmentIn | None = None
    expire_after_idle_days: int | None = Field(default=None, ge=0, le=0, description="0: never (the only value here)")
    name: SpaceName | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return _refuse_unsupported(data)


class SpaceCreate(_SpaceSettings):
    region: Literal[REGIONS] | None = None


class SpaceUpdate(_SpaceSettings):
    pass


class AiOut(WireModel):
    credential_ids: list[str] | None = None


class EnvironmentOut(WireModel):
    ai: AiOut | None = None


class SpaceOut(WireModel):
    id: str
    object: Literal["space"] = "space"
    name: str
    region: str
    status: Literal["active", "deleting", "deleted"] = "active"
    environment: EnvironmentOut
    capability_scopes: list[str] = Field(default_factory=list)
    expire_after_idle_days: int = Field(default=0, description="0: the space never expires")
    is_default: bool
    deletion_error: str | None = None
    created_at: Timestamp
    updated_at: Timestamp


SpacePage = page_model(SpaceOut)

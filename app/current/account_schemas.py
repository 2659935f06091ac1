"""Wire models of the current generation's account surface: whoami, API keys, account settings, help
(the 0.3 wheel's `AuthWhoamiResponse`, `ApiKey`, `ApiKeyCreateRequest`, `Account`, `HelpResponse`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.accounts import branding
from app.accounts.scopes import MAX_SCOPES, SCOPE_PATTERN
from app.core.errors import InvalidRequest
from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import page_model

Audience = Literal["api", "sdk", "cli", "mcp"]
Method = Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Field(pattern=r"\S")]


class EffectiveScope(WireModel):
    organization_id: str
    scope: Literal["organization", "subaccount"] = "organization"
    subaccount_id: str | None = None
    default_space_id: str | None = Field(description="The space BCTRL-Space names, else the account's default")


class WhoAmIOut(WireModel):
    object: Literal["identity"] = "identity"
    organization_id: str
    key_id: str | None
    email: str | None = None
    plan: Literal["free", "developer", "business", "enterprise"] = "enterprise"
    scope: Literal["organization", "subaccount"] = "organization"
    subaccount_id: str | None = None
    default_space_id: str | None
    effective_scope: EffectiveScope


# --- API keys -----------------------------------------------------------------------------------


class ApiKeyOut(WireModel):
    id: str
    object: Literal["api_key"] = "api_key"
    type: Literal["organization", "subaccount"] = "organization"
    name: str | None
    key_prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: list[str] = Field(
        default_factory=list, description="What the key may do (`*`, `read`, `<area>:read|write`); empty: everything"
    )
    subaccount_id: str | None = Field(default=None, description="The subaccount a `subaccount` key acts in")
    expires_at: Timestamp | None = None
    last_used_at: Timestamp | None = Field(default=None, description="To the minute")
    usage_count: int = Field(ge=0)
    created_at: Timestamp
    updated_at: Timestamp


ApiKeyPage = page_model(ApiKeyOut)


class ApiKeyCreatedOut(WireModel):
    data: ApiKeyOut
    secret: str = Field(description="Shown once: only a hash of it is stored")


class ApiKeyDeletedOut(WireModel):
    id: str
    object: Literal["api_key"] = "api_key"
    deleted: bool = True


def _refused(field: str, value: Any, code: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not supported by this server: {why}",
        code=code,
        details={"fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}], "value": value},
    )


class ApiKeyCreate(RequestModel):
    """An organization key, or (`type: subaccount` with `subaccountId`) a key of one of the
    organization's subaccounts; `scopes` narrow what it may do (app/accounts/scopes.py). Agent keys
    are refused by name."""

    type: Literal["organization", "subaccount"] | None = None
    name: KeyName | None = None
    expires_at: Annotated[datetime | None, Field(strict=False)] = Field(
        default=None, description="RFC 3339; the key stops authenticating then"
    )
    scopes: list[Annotated[str, Field(pattern=SCOPE_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_SCOPES,
        description="`*`, `read`, or `<area>:read|write` (the area is the path's first segment after /v1/); "
        "none: everything",
    )
    subaccount_id: str | None = Field(default=None, max_length=64, description="The subaccount the key acts in")
    agent: None = Field(default=None, description="Not offered: no agent keys here")

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("type") == "agent" or data.get("agent") is not None):
            raise _refused("type", "agent", "api_key.type_unsupported", "agent keys are not offered")
        return data

    @model_validator(mode="after")
    def _aware(self) -> ApiKeyCreate:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise InvalidRequest(
                "expiresAt needs a time zone offset (RFC 3339), e.g. 2030-01-01T00:00:00Z",
                details={"fields": [{"field": "expiresAt", "in": "body", "message": "no offset", "type": "value"}]},
            )
        return self


# --- account settings -----------------------------------------------------------------------------


# An https URL whose origin a page's Content-Security-Policy can name exactly (app/accounts/branding.py
# `logo_origin`): a host of LDH labels (or an IPv4 address), a port 1..65535, no credentials.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
LOGO_PATTERN = rf"^https://{_LABEL}(?:\.{_LABEL})*{_PORT}(?:[/?#]\S*)?$"


class BrandingPatch(RequestModel):
    accent: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")
    logo: str | None = Field(
        default=None,
        max_length=2048,
        pattern=LOGO_PATTERN,
        description="An https URL whose host is a DNS name or an IPv4 address, without credentials; another "
        "https URL is 400 `branding.logo_unsafe` (the account's pages could not allow its origin)",
    )
    product_name: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"\S")
    show_powered_by: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _logo_unsafe_first(cls, data: Any) -> Any:
        # An https logo the pages could not show gets its own code, before the pattern's generic one.
        if isinstance(data, dict) and isinstance(data.get("logo"), str) and data["logo"].startswith("https://"):
            branding.check_changes({"logo": data["logo"]})
        return data


class AccountUpdate(RequestModel):
    branding: BrandingPatch | None = None


class BrandingConfigOut(WireModel):
    accent: str | None = None
    logo: str | None = None
    product_name: str | None = None
    show_powered_by: bool | None = None


class BrandingTokensOut(WireModel):
    accent: str
    accent_border: str
    accent_soft: str
    bg: str
    border_strong: str
    hairline: str
    inset: str
    panel: str
    surface_raised: str
    text: str
    text_faint: str
    text_muted: str


class ResolvedBrandingOut(WireModel):
    logo: str | None
    product_name: str
    show_powered_by: bool
    tokens: BrandingTokensOut


class BrandingOut(WireModel):
    config: BrandingConfigOut
    resolved: ResolvedBrandingOut


class AccountOut(WireModel):
    id: str
    object: Literal["account"] = "account"
    name: str
    branding: BrandingOut
    created_at: Timestamp
    updated_at: Timestamp


# --- help -----------------------------------------------------------------------------------------


class HelpTopicOut(WireModel):
    topic: str
    title: str
    summary: str
    audiences: list[Audience]
    method: Method | None = None
    path: str | None = None


class HelpOverviewOut(WireModel):
    type: Literal["overview"] = "overview"
    audience: Audience | None = None
    summary: str
    topics: list[HelpTopicOut]


class HelpApiOperationOut(WireModel):
    method: Method
    path: str


class HelpSdkMethodOut(WireModel):
    language: str
    method: str
    package: str | None = None


class HelpMcpToolOut(WireModel):
    """The MCP tool that runs this operation at /_mcp/server, and the MCP resources that describe it."""

    tool_name: str
    operation_resource: str | None = None
    schema_resources: list[str] | None = None


class HelpTopicDetailOut(WireModel):
    type: Literal["topic"] = "topic"
    topic: str
    title: str | None = None
    summary: str
    audience: Audience | None = None
    api: HelpApiOperationOut | None = None
    sdk: list[HelpSdkMethodOut] | None = None
    mcp: HelpMcpToolOut | None = None

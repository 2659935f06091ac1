"""AI connections: the LLM endpoints an account's invocations may use."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update as sa_update

from app.accounts.service import Principal
from app.ai.llm import DEFAULT_BASE_URLS, Endpoint, LlmClient, base_url
from app.ai.models import AiConnection
from app.ai.schemas import AiConnectionCreate, AiConnectionUpdate
from app.ai.secrets import SecretBox
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id

UNREADABLE_KEY = "The stored key was sealed under another server key (BCTRL_SECRET_KEY changed); set it again"


def not_found(connection_id: object) -> NotFound:
    return NotFound(
        "AI connection not found", code="ai_credential.not_found", details={"aiConnectionId": str(connection_id)}
    )


def _box(ctx: AppContext) -> SecretBox:
    return SecretBox(ctx.signing_key)


async def create(ctx: AppContext, p: Principal, body: AiConnectionCreate) -> AiConnection:
    if body.provider == "openai-compatible" and not body.base_url:
        raise InvalidRequest(
            "An openai-compatible connection needs its baseUrl",
            details={"fields": [{"field": "baseUrl", "message": "required for openai-compatible"}]},
        )
    now = clock.now()
    row = AiConnection(
        id=ids.new_id(),
        account_id=p.account_id,
        label=body.label,
        provider=body.provider,
        base_url=body.base_url,
        default_model=body.default_model,
        enabled=body.enabled,
        api_key_encrypted=_box(ctx).seal(body.api_key) if body.api_key else None,
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(row)
    return row


async def get(ctx: AppContext, p: Principal, connection_id: str) -> AiConnection:
    row = await get_owned(ctx.db, AiConnection, connection_id, p.account_id)
    if row is None:
        raise not_found(connection_id)
    return row


async def list_connections(ctx: AppContext, p: Principal, page: PageParams) -> tuple[list[AiConnection], str | None]:
    stmt = select(AiConnection).where(AiConnection.account_id == p.account_id)
    return await fetch_by_id(ctx.db, stmt, AiConnection.id, page)


async def update(ctx: AppContext, p: Principal, connection_id: str, body: AiConnectionUpdate) -> AiConnection:
    return await update_row(ctx, await get(ctx, p, connection_id), body)


async def update_row(ctx: AppContext, row: AiConnection, body: AiConnectionUpdate) -> AiConnection:
    """Apply the fields given in `body` (a key given as null removes the stored one)."""
    given = body.model_fields_set
    changes: dict = {"updated_at": clock.now()}
    if "label" in given and body.label is not None:
        changes["label"] = body.label
    if "base_url" in given:
        if body.base_url is None and row.provider == "openai-compatible":
            raise InvalidRequest(
                "An openai-compatible connection needs its baseUrl",
                details={"fields": [{"field": "baseUrl", "message": "cannot be removed"}]},
            )
        changes["base_url"] = body.base_url
    if "api_key" in given:
        changes["api_key_encrypted"] = _box(ctx).seal(body.api_key) if body.api_key else None
    if "default_model" in given:
        changes["default_model"] = body.default_model
    if "enabled" in given and body.enabled is not None:
        changes["enabled"] = body.enabled
    # One write-first statement (on SQLite a read-then-write transaction can be refused its write).
    async with ctx.db.transaction() as s:
        await s.execute(sa_update(AiConnection).where(AiConnection.id == row.id).values(**changes))
        return await s.get(AiConnection, row.id, populate_existing=True)


async def delete(ctx: AppContext, p: Principal, connection_id: str) -> uuid.UUID:
    return await delete_row(ctx, await get(ctx, p, connection_id))


async def delete_row(ctx: AppContext, row: AiConnection) -> uuid.UUID:
    async with ctx.db.transaction() as s:
        await s.delete(await s.get(AiConnection, row.id))
    return row.id


def endpoint(ctx: AppContext, row: AiConnection, model: str | None = None) -> Endpoint:
    """Where and how to call this connection's model (the key decrypted only here, in memory)."""
    key = _box(ctx).open(row.api_key_encrypted) if row.api_key_encrypted else None
    return Endpoint(
        provider=row.provider,
        base_url=base_url(row.provider, row.base_url),
        api_key=key,
        model=model or row.default_model or "",
    )


async def test(ctx: AppContext, p: Principal, connection_id: str) -> tuple[bool, str, str]:
    row = await get(ctx, p, connection_id)
    if key_unreadable(ctx, row):
        return False, UNREADABLE_KEY, row.provider
    client = LlmClient()
    try:
        ok, message = await client.check(endpoint(ctx, row))
    finally:
        await client.close()
    if ok and not row.enabled:
        message += "; the connection is disabled, so invocations will not use it"
    return ok, message, row.provider


# --- credentials as a resource of their own: named, filtered, verified before they are kept ---

# Providers whose API this server cannot call: why, for the refusal.
UNSUPPORTED_PROVIDERS = {
    "azure": "Azure OpenAI takes an api-key header and per-deployment URLs, which this server does not speak",
}


@dataclass(frozen=True)
class CredentialSpec:
    """A credential to keep. `provider` is the stored word (`openai-compatible` for a custom endpoint)."""

    label: str | None  # None: `<provider>-<the id's last 8 hex>`
    provider: str
    base_url: str | None
    api_key: str | None
    default_model: str | None
    enabled: bool


@dataclass(frozen=True)
class CredentialFilter:
    provider: str | None = None
    label: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: str | None
    checked_at: datetime
    latency_seconds: float | None


def _refuse_unusable(provider: str, configured_url: str | None) -> None:
    if provider in UNSUPPORTED_PROVIDERS:
        raise InvalidRequest(
            f"The {provider} provider is not supported by this server: {UNSUPPORTED_PROVIDERS[provider]}",
            code="ai_credential.provider_unsupported",
            details={"fields": [{"field": "provider", "in": "body", "message": UNSUPPORTED_PROVIDERS[provider]}]},
        )
    if not configured_url and provider not in DEFAULT_BASE_URLS:
        raise InvalidRequest(
            "A custom endpoint needs its baseUrl",
            code="ai_credential.base_url_required",
            details={"fields": [{"field": "baseUrl", "in": "body", "message": "required for this provider"}]},
        )


async def check_endpoint(ep: Endpoint) -> CheckResult:
    """Whether the endpoint answers these credentials (it lists its models; no tokens are spent)."""
    client = LlmClient()
    started = time.perf_counter()
    try:
        ok, message = await client.check(ep)
    finally:
        await client.close()
    latency = round(time.perf_counter() - started, 3)
    return CheckResult(ok=ok, error=None if ok else message, checked_at=clock.now(), latency_seconds=latency)


async def create_credential(ctx: AppContext, p: Principal, spec: CredentialSpec, *, verify: bool) -> AiConnection:
    """Keep a credential; with `verify`, only once its endpoint has accepted it (else nothing is kept:
    400 `ai_credential.verification_failed` says what the endpoint answered)."""
    _refuse_unusable(spec.provider, spec.base_url)
    if verify:
        ep = Endpoint(spec.provider, base_url(spec.provider, spec.base_url), spec.api_key, spec.default_model or "")
        result = await check_endpoint(ep)
        if not result.ok:
            raise InvalidRequest(
                f"The credential was not saved: {result.error}",
                code="ai_credential.verification_failed",
                details={"provider": spec.provider, "baseUrl": ep.base_url},
            )
    now, new_id = clock.now(), ids.new_id()
    row = AiConnection(
        id=new_id,
        account_id=p.account_id,
        label=spec.label or f"{spec.provider}-{new_id.hex[-8:]}",
        provider=spec.provider,
        base_url=spec.base_url,
        default_model=spec.default_model,
        enabled=spec.enabled,
        api_key_encrypted=_box(ctx).seal(spec.api_key) if spec.api_key else None,
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(row)
    return row


async def list_credentials(
    ctx: AppContext, p: Principal, page: PageParams, flt: CredentialFilter, *, newest_first: bool
) -> tuple[list[AiConnection], str | None]:
    stmt = select(AiConnection).where(AiConnection.account_id == p.account_id)
    if flt.provider is not None:
        stmt = stmt.where(AiConnection.provider == flt.provider)
    if flt.label is not None:
        stmt = stmt.where(AiConnection.label == flt.label)
    if flt.enabled is not None:
        stmt = stmt.where(AiConnection.enabled == flt.enabled)
    return await fetch_by_id(ctx.db, stmt, AiConnection.id, page, newest_first=newest_first)


def key_unreadable(ctx: AppContext, row: AiConnection) -> bool:
    """A stored key sealed under another server key cannot be sent."""
    return row.api_key_encrypted is not None and _box(ctx).open(row.api_key_encrypted) is None


async def check_row(ctx: AppContext, row: AiConnection) -> CheckResult:
    """Ask the credential's endpoint whether it accepts the stored key (whether or not it is enabled)."""
    if key_unreadable(ctx, row):
        return CheckResult(ok=False, error=UNREADABLE_KEY, checked_at=clock.now(), latency_seconds=None)
    return await check_endpoint(endpoint(ctx, row))

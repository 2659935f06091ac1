"""AI connections: the LLM endpoints an account's invocations may use."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy import update as sa_update

from app.accounts.service import Principal
from app.ai.llm import Endpoint, LlmClient, base_url
from app.ai.models import AiConnection
from app.ai.schemas import AiConnectionCreate, AiConnectionUpdate
from app.ai.secrets import SecretBox
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id


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
    row = await get(ctx, p, connection_id)
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
    row = await get(ctx, p, connection_id)
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
    if row.api_key_encrypted and _box(ctx).open(row.api_key_encrypted) is None:
        return (
            False,
            "The stored key was sealed under another server key (BCTRL_SECRET_KEY changed); set it again",
            row.provider,
        )
    client = LlmClient()
    try:
        ok, message = await client.check(endpoint(ctx, row))
    finally:
        await client.close()
    if ok and not row.enabled:
        message += "; the connection is disabled, so invocations will not use it"
    return ok, message, row.provider

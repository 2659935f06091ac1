"""The models a saved credential's endpoint offers: asked of the endpoint itself (its OpenAI or
Anthropic model list), merged across the account's enabled credentials, never invented.

What a list entry does not say (a capability, a creation time) is not guessed: capabilities the
endpoint does not report are false, and a model without a creation time takes its credential's."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select

from app.accounts.service import Principal
from app.ai import service
from app.ai.llm import LlmClient, LlmError
from app.ai.models import AiConnection
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, InvalidRequest, TooManyRequests
from app.core.paging import PageParams, encode_cursor


@dataclass
class ModelInfo:
    provider: str  # the stored word of the credential that offers it
    id: str
    display_name: str
    created_at: datetime
    supports_tools: bool = False
    supports_vision: bool = False
    supports_structured_output: bool = False
    supports_reasoning_effort: bool = False
    supports_thinking_budget: bool = False
    credential_ids: list[uuid.UUID] = field(default_factory=list)


async def offered(
    ctx: AppContext, p: Principal, *, provider: str | None = None, credential: AiConnection | None = None
) -> list[ModelInfo]:
    """Models offered by `credential`, else by every enabled credential of the account (of `provider`
    when given), one entry per provider and model id. An endpoint that is down or refuses its key
    fails the whole answer (502 naming the credential): a partial list would look complete."""
    if credential is not None:
        rows = [credential]
    else:
        stmt = select(AiConnection).where(AiConnection.account_id == p.account_id, AiConnection.enabled.is_(True))
        if provider is not None:
            stmt = stmt.where(AiConnection.provider == provider)
        async with ctx.db.read() as s:
            rows = list((await s.execute(stmt.order_by(AiConnection.id))).scalars())
    for row in rows:
        if service.key_unreadable(ctx, row):
            raise Conflict(service.UNREADABLE_KEY, code="ai_credential.key_unreadable", details=_where(row))
    client = LlmClient()
    try:
        answers = await asyncio.gather(*(_ask(ctx, client, row) for row in rows), return_exceptions=True)
    finally:
        await client.close()
    lists: list[list[dict[str, Any]]] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
        lists.append(answer)
    merged: dict[tuple[str, str], ModelInfo] = {}
    for row, entries in zip(rows, lists, strict=True):
        for entry in entries:
            info = _info(row, entry)
            known = merged.setdefault((info.provider, info.id), info)
            known.credential_ids.append(row.id)
    return list(merged.values())


def page(models: list[ModelInfo], params: PageParams, *, newest_first: bool) -> tuple[list[ModelInfo], str | None]:
    """One page of a computed list, ordered by (createdAt, provider, id); the cursor is the last key seen."""
    models = sorted(models, key=_key, reverse=newest_first)
    if params.after is not None:
        after = _parse_key(params.after)
        models = [m for m in models if (_key(m) < after if newest_first else _key(m) > after)]
    if len(models) <= params.limit:
        return models, None
    models = models[: params.limit]
    last = models[-1]
    return models, encode_cursor(orjson.dumps([last.created_at.isoformat(), last.provider, last.id]).decode())


def _key(m: ModelInfo) -> tuple[datetime, str, str]:
    return (m.created_at, m.provider, m.id)


def _parse_key(after: object) -> tuple[datetime, str, str]:
    try:
        when, provider, model_id = orjson.loads(after)  # type: ignore[arg-type]
        key = (datetime.fromisoformat(when), provider, model_id)
        if key[0].tzinfo is None or not isinstance(provider, str) or not isinstance(model_id, str):
            raise ValueError
        return key
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidRequest(
            "cursor is not a value returned as nextCursor",
            details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
        ) from None


def _where(row: AiConnection) -> dict[str, Any]:
    return {"credentialId": str(row.id), "provider": row.provider}


async def _ask(ctx: AppContext, client: LlmClient, row: AiConnection) -> list[dict[str, Any]]:
    ep = service.endpoint(ctx, row)
    try:
        return await client.list_models(ep)
    except LlmError as exc:
        details = {**_where(row), "baseUrl": ep.base_url, "reason": exc.code}
        message = f"AI credential {row.id} ({row.label}): {exc.message}"
        if exc.code == "llm.refused":
            raise DomainError(message, code="ai_credential.verification_failed", status=502, details=details) from None
        if exc.code == "llm.rate_limited":
            raise TooManyRequests(message, code="ai.rate_limited", details=details) from None
        raise DomainError(message, code="ai.gateway_unavailable", status=502, details=details) from None


def _when(entry: dict[str, Any], fallback: datetime) -> datetime:
    fallback = fallback if fallback.tzinfo else fallback.replace(tzinfo=UTC)
    created = entry.get("created_at", entry.get("created"))
    try:
        if type(created) is int and 0 < created < 2**37:
            value = datetime.fromtimestamp(created, UTC)
        elif isinstance(created, str):
            value = datetime.fromisoformat(created.replace("Z", "+00:00"))
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
        else:
            return fallback
    except (ValueError, OverflowError, OSError):
        return fallback
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


def _words(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _info(row: AiConnection, entry: dict[str, Any]) -> ModelInfo:
    # OpenRouter-style metadata says what a model takes; plain OpenAI and Anthropic lists say nothing.
    params = _words(entry.get("supported_parameters"))
    architecture = entry.get("architecture") if isinstance(entry.get("architecture"), dict) else {}
    inputs = _words(architecture.get("input_modalities"))
    name = entry.get("display_name") or entry.get("name")
    return ModelInfo(
        provider=row.provider,
        id=entry["id"],
        display_name=name if isinstance(name, str) and name else entry["id"],
        created_at=_when(entry, row.created_at),
        supports_tools="tools" in params,
        supports_vision="image" in inputs,
        supports_structured_output=bool(params & {"structured_outputs", "response_format"}),
        supports_reasoning_effort="reasoning" in params or "reasoning_effort" in params,
        supports_thinking_budget=False,
    )

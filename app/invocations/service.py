"""Invocations: durable command rows (`execution_mode` durable) that a worker in any server process
runs. Creating one takes the runtime's controller lock; it is released when the invocation ends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import Principal
from app.ai.models import AiConnection
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.invocations.engine import check_schema
from app.locks import Holder
from app.runs import commands, events
from app.runs.command_models import LIVE_STATUSES, TERMINAL_STATUSES, Command
from app.runtimes import controller
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces.models import Space

# Held from creation; the worker renews it while the invocation runs, so a dead server frees it soon.
LOCK_TTL_MS = 60_000
DEFAULT_TIMEOUT_SECONDS = 300


def not_found(invocation_id: object) -> NotFound:
    return NotFound("Invocation not found", code="invocation.not_found", details={"invocationId": str(invocation_id)})


def space_default(space: Space, provider: str) -> dict[str, Any]:
    """The space's `mounts.ai.defaults` entry for a provider (its keys are the provider names)."""
    return (((space.mounts or {}).get("ai") or {}).get("defaults") or {}).get(provider) or {}


async def resolve_connection(
    ctx: AppContext, account_id: uuid.UUID, space: Space, provider: str, named: str | None
) -> AiConnection:
    """The AI connection an invocation uses: the one named, else the space's default for the provider,
    else the account's first enabled one; always within the space's allow list when it has one."""
    ai = (space.mounts or {}).get("ai") or {}
    allowed = set(ai.get("allowConnections") or [])
    default = space_default(space, provider)
    wanted = named or default.get("connection")
    async with ctx.db.read() as s:
        if wanted:
            cid = ids.parse_uuid(wanted)
            row = await s.get(AiConnection, cid) if cid else None
            if row is None or row.account_id != account_id:
                raise NotFound(
                    "AI connection not found", code="ai_credential.not_found", details={"connection": wanted}
                )
        else:
            rows = list(
                (
                    await s.execute(
                        select(AiConnection)
                        .where(AiConnection.account_id == account_id, AiConnection.enabled.is_(True))
                        .order_by(AiConnection.id)
                    )
                ).scalars()
            )
            rows = [r for r in rows if not allowed or str(r.id) in allowed]
            if not rows:
                raise InvalidRequest(
                    "No AI connection to run this on: create one (POST /v1/ai-connections) or "
                    "name one with `connection`",
                    code="ai_credential.not_configured",
                )
            row = rows[0]
    if not row.enabled:
        raise InvalidRequest(
            "That AI connection is disabled", code="ai_credential.disabled", details={"connection": str(row.id)}
        )
    if allowed and str(row.id) not in allowed:
        raise InvalidRequest(
            "The space does not allow that AI connection",
            code="ai_credential.not_allowed",
            details={"connection": str(row.id)},
        )
    return row


async def create(
    ctx: AppContext, p: Principal, runtime: Runtime, provider: str, method: str, request: dict[str, Any]
) -> Command:
    if "outputSchema" in request and (problem := check_schema(request["outputSchema"])):
        raise InvalidRequest(
            f"outputSchema is not a valid JSON Schema: {problem}", code="invocation.output_schema_invalid"
        )
    if runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id is None:
        raise runtime_not_active(runtime.id, runtime.status, "The runtime is not active")
    async with ctx.db.read() as s:
        space = await s.get(Space, runtime.space_id)
    connection = await resolve_connection(ctx, p.account_id, space, provider, request.get("connection"))
    model = request.get("model") or space_default(space, provider).get("model") or connection.default_model
    if not model:
        raise InvalidRequest(
            "No model to use: give `model`, or set the connection's defaultModel", code="ai_credential.model_missing"
        )
    request = {**request, "connection": str(connection.id), "model": model}
    invocation_id = ids.new_id()
    # The controller is taken in the transaction that records the invocation: both happen or neither.
    async with ctx.db.transaction() as s:
        lock_token = await controller.take(ctx, s, runtime.id, Holder("invocation", invocation_id.hex), LOCK_TTL_MS)
        command = await commands.record(
            s, runtime.active_run_id, f"{provider}.{method}", request=request, status="queued"
        )
        command.id, command.execution_mode, command.finished_at, command.started_at = (
            invocation_id,
            "durable",
            None,
            None,
        )
        command.provider, command.method, command.lock_token = provider, method, lock_token
        command.timeout_seconds = request.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS
        command.progress = {"step": 0, "totalSteps": request.get("maxSteps"), "message": "queued"}
        await events.append(
            s,
            runtime.active_run_id,
            "invocation.created",
            "invocation",
            {"invocationId": str(invocation_id), "provider": provider, "method": method, "model": model},
        )
    if ctx.invocations is not None:
        ctx.invocations.wake()
    return command


async def get(ctx: AppContext, p: Principal, invocation_id: str) -> Command:
    row = await get_owned(ctx.db, Command, invocation_id, p.account_id)
    # A task is a durable command too (provider "agent"); the invocation routes show only invocations.
    if row is None or row.execution_mode != "durable" or row.provider == "agent":
        raise not_found(invocation_id)
    return row


async def list_for(
    ctx: AppContext,
    p: Principal,
    page: PageParams,
    *,
    runtime_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> tuple[list[Command], str | None]:
    stmt = select(Command).where(
        Command.account_id == p.account_id, Command.execution_mode == "durable", Command.provider != "agent"
    )
    if runtime_id is not None:
        stmt = stmt.where(Command.runtime_id == runtime_id)
    if run_id is not None:
        stmt = stmt.where(Command.run_id == run_id)
    return await fetch_by_id(ctx.db, stmt, Command.id, page)


async def wait(ctx: AppContext, row: Command, timeout_ms: int) -> tuple[Command, bool]:
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    while row.status not in TERMINAL_STATUSES:
        if asyncio.get_running_loop().time() >= deadline:
            return row, True
        await asyncio.sleep(min(0.2, max(0.0, deadline - asyncio.get_running_loop().time())))
        async with ctx.db.read() as s:
            row = await s.get(Command, row.id, populate_existing=True)
    return row, False


async def request_cancel(s: AsyncSession, row: Command, error: dict[str, Any]) -> bool:
    """In the caller's transaction, for an invocation or a task alike: a queued one ends `cancelled` at
    once with `error` (True: the caller lets go of what it holds); a live one becomes `cancelling`, and
    its runner stops before its next step (False)."""
    now = clock.now()
    queued = (
        await s.execute(
            update(Command)
            .where(Command.id == row.id, Command.status == "queued")
            .values(status="cancelled", cancel_requested_at=now, finished_at=now, updated_at=now, error=error)
        )
    ).rowcount
    if not queued:
        await s.execute(
            update(Command)
            .where(Command.id == row.id, Command.status.in_(LIVE_STATUSES))
            .values(status="cancelling", cancel_requested_at=now, updated_at=now)
        )
    return bool(queued)


async def cancel(ctx: AppContext, row: Command) -> Command:
    """Queued: cancelled at once. Running: `cancelling`, and the engine stops before its next step."""
    async with ctx.db.transaction() as s:
        error = {"code": "invocation.cancelled", "message": "Cancelled before it started"}
        if await request_cancel(s, row, error):
            await events.append(s, row.run_id, "invocation.cancelled", "invocation", {"invocationId": str(row.id)})
            await controller.release(ctx, s, row.runtime_id, row.lock_token)
    async with ctx.db.read() as s:
        return await s.get(Command, row.id, populate_existing=True)

"""CDP connection leases: who may drive a runtime's browser, through which URL, until when.

A lease holds the runtime's controller lock for its whole life (app/runtimes/controller.py decides). Seed leases have a TTL and a
random secret shown once; the flat API's run-scoped lease lasts as long as its run and its
secret is derived from the server key, so its owner can read the same URL again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import structlog
from sqlalchemy import select, update

from app.connections.models import Connection
from app.connections.models import ConnectionScope as Scope
from app.connections.models import ConnectionStatus as CS
from app.connections.schemas import ConnectionCreate, Endpoint, FlatConnection
from app.core import clock, ids, metrics, server_key
from app.core.context import AppContext, acting_key
from app.core.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from app.core.paging import PageParams, fetch_by_id
from app.locks import Holder
from app.runs import commands, events
from app.runs.models import Run, RunStatus
from app.runs.schemas import RecordingFlag
from app.runtimes import controller
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime
from app.runtimes.models import RuntimeStatus as RS

log = structlog.get_logger(__name__)

# The run-scoped lease keeps its lock alive by renewal rather than by one long TTL, so a lock
# outlives a dead server by at most this long.
RUN_LOCK_TTL_MS = controller.RUN_CONNECTION_TTL_MS
RUN_TOKEN_PURPOSE = "cdp-run-lease"


def connection_not_found(connection_id: object) -> NotFound:
    return NotFound("Connection not found", code="connection.not_found", details={"connectionId": str(connection_id)})


controller_busy = controller.controller_busy


def endpoint_urls(ctx: AppContext, connection_id: uuid.UUID, token: str) -> tuple[str, str]:
    """(ws URL, http URL) of a lease, built from BCTRL_PUBLIC_URL."""
    base = ctx.settings.resolved_public_url
    scheme = "wss" if urlsplit(base).scheme == "https" else "ws"
    rest = base.split("://", 1)[1]
    path = f"/v1/cdp/{connection_id}?token={token}"
    return f"{scheme}://{rest}{path}", f"{base}{path}"


WEBMCP_PATH = "/_mcp/webmcp/{connection_id}"


def webmcp_url(ctx: AppContext, connection_id: uuid.UUID, token: str) -> str:
    """A run's webMcpUrl (served by app/mcp/webmcp_server.py): the connection and token of its cdpUrl."""
    return f"{ctx.settings.resolved_public_url}{WEBMCP_PATH.format(connection_id=connection_id)}?token={token}"


# --- seed leases ------------------------------------------------------------------------------


async def create_lease(ctx: AppContext, runtime: Runtime, body: ConnectionCreate) -> tuple[Connection, Endpoint]:
    minimum = ctx.settings.min_lease_ttl_seconds
    if body.ttl_seconds < minimum:
        raise InvalidRequest(
            f"ttlSeconds must be between {minimum} and 7200",
            details={
                "fields": [
                    {
                        "field": "ttlSeconds",
                        "in": "body",
                        "message": f"must be at least {minimum}",
                        "type": "greater_than_equal",
                    }
                ]
            },
        )
    if runtime.status != RS.ACTIVE or runtime.active_run_id is None:
        raise runtime_not_active(runtime.id, runtime.status)
    token = ids.new_secret()
    expires_at = clock.now() + timedelta(seconds=body.ttl_seconds)
    connection = await _lease(
        ctx,
        runtime,
        Scope.LEASE,
        token,
        expires_at,
        body.ttl_seconds * 1000,
        ttl_seconds=body.ttl_seconds,
        options=body.options,
    )
    ws_url, http_url = endpoint_urls(ctx, connection.id, token)
    return connection, Endpoint(url=ws_url, http_url=http_url, expires_at=expires_at)


async def _lease(
    ctx: AppContext,
    runtime: Runtime,
    scope: str,
    token: str,
    expires_at: datetime | None,
    lock_ttl_ms: int,
    *,
    ttl_seconds: int | None,
    options: dict,
    connection_id: uuid.UUID | None = None,
) -> Connection:
    """Take the controller and record the lease in one transaction: both happen or neither."""
    connection_id = connection_id or ids.new_id()
    async with ctx.db.transaction() as s:
        current = (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one()
        if current.status != RS.ACTIVE or current.active_run_id != runtime.active_run_id:
            raise runtime_not_active(current.id, current.status)
        lock_token = await controller.take(ctx, s, runtime.id, Holder("connection", str(connection_id)), lock_ttl_ms)
        connection = Connection(
            id=connection_id,
            account_id=runtime.account_id,
            space_id=runtime.space_id,
            runtime_id=runtime.id,
            run_id=current.active_run_id,
            protocol="cdp",
            scope=scope,
            status=CS.ACTIVE,
            token_hash=ids.hash_secret(token),
            lock_token=lock_token,
            ttl_seconds=ttl_seconds,
            options=options,
            created_at=clock.now(),
            expires_at=expires_at,
            revoked_at=None,
            closed_at=None,
            last_attached_at=None,
            api_key_id=acting_key.get(),
        )
        s.add(connection)
        await s.flush()
        metrics.leases_created.labels(scope).inc()
        await events.append(
            s,
            connection.run_id,
            "connection.created",
            "connection",
            {"scope": scope, "ttlSeconds": ttl_seconds, "expiresAt": clock.iso(expires_at)},
            connection_id=connection.id,
        )
        await commands.record(
            s,
            connection.run_id,
            "connection.create",
            request={"protocol": "cdp", "ttlSeconds": ttl_seconds, "scope": scope},
            result={"connectionId": str(connection.id), "expiresAt": clock.iso(expires_at)},
        )
    return connection


async def list_leases(ctx: AppContext, runtime: Runtime, page: PageParams) -> tuple[list[Connection], str | None]:
    return await fetch_by_id(ctx.db, select(Connection).where(Connection.runtime_id == runtime.id), Connection.id, page)


async def get_lease(ctx: AppContext, runtime: Runtime, connection_id: str) -> Connection:
    cid = ids.parse_uuid(connection_id)
    if cid is None:
        raise connection_not_found(connection_id)
    async with ctx.db.read() as s:
        connection = await s.get(Connection, cid)
    if connection is None or connection.runtime_id != runtime.id:
        raise connection_not_found(connection_id)
    return connection


async def revoke(ctx: AppContext, runtime: Runtime, connection_id: str) -> Connection:
    """Refuse new attaches at once and free the controller lock; repeat calls return the same lease."""
    connection = await get_lease(ctx, runtime, connection_id)
    async with ctx.db.transaction() as s:
        now = clock.now()
        result = await s.execute(
            update(Connection)
            .where(Connection.id == connection.id, Connection.status == CS.ACTIVE)
            .values(status=CS.REVOKED, revoked_at=now)
        )
        if result.rowcount == 1:
            await events.append(
                s, connection.run_id, "connection.revoked", "connection", {}, connection_id=connection.id
            )
            await commands.record(
                s,
                connection.run_id,
                "connection.revoke",
                request={"connectionId": str(connection.id)},
                result={"status": CS.REVOKED},
            )
        connection = await s.get(Connection, connection.id, populate_existing=True)
        if connection.status != CS.ACTIVE:
            await controller.release(ctx, s, connection.runtime_id, connection.lock_token)
    return connection


async def revoke_run(ctx: AppContext, runtime: Runtime) -> int:
    """Revoke every active connection of the runtime's current run (the run's own and every lease):
    their URLs stop working, their sockets close and their locks go at once; the next read of the run's
    connection issues a new one. Returns how many were revoked."""
    run_id = runtime.active_run_id
    if run_id is None or runtime.status != RS.ACTIVE:
        raise runtime_not_active(runtime.id, runtime.status, "The browser is not running")
    async with ctx.db.transaction() as s:
        rows = list(
            (
                await s.execute(
                    select(Connection)
                    .where(Connection.run_id == run_id, Connection.status == CS.ACTIVE)
                    .with_for_update()
                )
            ).scalars()
        )
        now = clock.now()
        for connection in rows:
            connection.status, connection.revoked_at = CS.REVOKED, now
            await events.append(
                s, run_id, "connection.revoked", "connection", {"reason": "revoke_all"}, connection_id=connection.id
            )
            await controller.release(ctx, s, runtime.id, connection.lock_token)
        await commands.record(s, run_id, "connections.revoke", result={"revoked": len(rows)})
    for connection in rows:
        await ctx.hub.close_connection(connection.id, 1000, "connection revoked")
    return len(rows)


# --- the flat API's run-scoped lease ----------------------------------------------------------


async def run_connection(ctx: AppContext, runtime: Runtime, run: Run) -> FlatConnection:
    """The run's connection, minted on first use; the same URL on every read while the run is active."""
    existing = await _run_lease(ctx, run.id)
    if existing is None:
        connection_id = ids.new_id()
        token = server_key.derive(ctx.signing_key, RUN_TOKEN_PURPOSE, str(connection_id))
        try:
            existing = await _lease(
                ctx,
                runtime,
                Scope.RUN,
                token,
                None,
                RUN_LOCK_TTL_MS,
                ttl_seconds=None,
                options={},
                connection_id=connection_id,
            )
        except Conflict:
            # Two starts of the same run raced: the other one minted the run's connection.
            existing = await _run_lease(ctx, run.id)
            if existing is None:
                raise
    return _flat(ctx, existing, run)


async def flat_connection_for_runtime(ctx: AppContext, runtime: Runtime) -> FlatConnection | None:
    """`?include=connection`: the active run's connection, if it has one."""
    if runtime.active_run_id is None:
        return None
    async with ctx.db.read() as s:
        run = await s.get(Run, runtime.active_run_id)
    return await flat_connection_for_run(ctx, run) if run else None


async def flat_connection_for_run(ctx: AppContext, run: Run) -> FlatConnection | None:
    """`?include=connection`: the run's connection while the run is active, else null."""
    if run.status != RunStatus.ACTIVE:
        return None
    existing = await _run_lease(ctx, run.id)
    return _flat(ctx, existing, run) if existing else None


async def _run_lease(ctx: AppContext, run_id: uuid.UUID) -> Connection | None:
    async with ctx.db.read() as s:
        return (
            (
                await s.execute(
                    select(Connection).where(
                        Connection.run_id == run_id, Connection.scope == Scope.RUN, Connection.status == CS.ACTIVE
                    )
                )
            )
            .scalars()
            .first()
        )


def _flat(ctx: AppContext, connection: Connection, run: Run) -> FlatConnection:
    token = server_key.derive(ctx.signing_key, RUN_TOKEN_PURPOSE, str(connection.id))
    ws_url, http_url = endpoint_urls(ctx, connection.id, token)
    return FlatConnection(
        id=str(connection.id),
        run_id=str(run.id),
        cdp_url=ws_url,
        connect_url=ws_url,
        http_url=http_url,
        web_mcp_url=webmcp_url(ctx, connection.id, token),
        recording=RecordingFlag(enabled=run.recording),
    )


# --- attach (the proxy asks) ------------------------------------------------------------------


@dataclass(frozen=True)
class AttachTicket:
    connection_id: uuid.UUID
    runtime_id: uuid.UUID
    run_id: uuid.UUID
    expires_at: datetime | None
    upstream_http: str
    upstream_ws: str


async def authorize_attach(
    ctx: AppContext, connection_id: str, token: str | None, attaching: bool = True
) -> AttachTicket:
    """Check token (constant time), lease, runtime and lock; every refusal says why with a stable code."""
    cid = ids.parse_uuid(connection_id)
    async with ctx.db.transaction() as s:
        connection = await s.get(Connection, cid) if cid else None
        # Unknown lease and wrong token look the same, so lease ids cannot be probed.
        if connection is None or not token or not ids.secret_matches(token, connection.token_hash):
            raise Unauthorized("The connection token is missing or invalid", code="connection.token_invalid")
        now = clock.now()
        if connection.status == CS.REVOKED:
            raise Conflict("This connection was revoked", code="connection.revoked", details={"connectionId": str(cid)})
        if connection.status == CS.EXPIRED or (connection.expires_at and connection.expires_at <= now):
            raise Conflict("This connection has expired", code="connection.expired", details={"connectionId": str(cid)})
        if connection.status == CS.CLOSED:
            raise Conflict(
                "The run this connection belonged to has ended",
                code="connection.closed",
                details={"connectionId": str(cid)},
            )
        runtime = await s.get(Runtime, connection.runtime_id)
        if runtime is None or runtime.status != RS.ACTIVE or runtime.active_run_id != connection.run_id:
            raise runtime_not_active(connection.runtime_id, message="The runtime is not active")
        # The runtime row is the truth of who controls it (a lock cache lost to a Redis restart changes nothing).
        if not await controller.holds(s, runtime, connection.lock_token):
            raise controller_busy(runtime.id, controller.holder_of(runtime) or Holder("none", ""))
        state = runtime.driver_state or {}
        if attaching:
            connection.last_attached_at = now
    return AttachTicket(
        connection_id=connection.id,
        runtime_id=runtime.id,
        run_id=connection.run_id,
        expires_at=connection.expires_at,
        upstream_http=state["httpUrl"],
        upstream_ws=state["wsUrl"],
    )


# --- endings: run end, expiry, renewal --------------------------------------------------------


async def on_run_end(ctx: AppContext, runtime_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """The run ended: its leases close, their locks go, their sockets are closed."""
    async with ctx.db.transaction() as s:
        rows = list(
            (
                await s.execute(
                    select(Connection)
                    .where(Connection.run_id == run_id, Connection.status == CS.ACTIVE)
                    .with_for_update()
                )
            ).scalars()
        )
        now = clock.now()
        for connection in rows:
            connection.status, connection.closed_at = CS.CLOSED, now
        # Whoever controlled the runtime for this run (a lease, a live viewer, an invocation) lets go.
        await controller.end_run(ctx, s, runtime_id, run_id)
    await ctx.hub.close_run(run_id, 1000, "runtime stopped")


async def expire_due(ctx: AppContext, limit: int = 200) -> int:
    """Expire leases whose TTL passed, whether or not any request arrives; returns how many."""
    now = clock.now()
    async with ctx.db.read() as s:
        due = list(
            (
                await s.execute(
                    select(Connection).where(Connection.status == CS.ACTIVE, Connection.expires_at <= now).limit(limit)
                )
            ).scalars()
        )
    expired = 0
    for connection in due:
        async with ctx.db.transaction() as s:
            result = await s.execute(
                update(Connection)
                .where(Connection.id == connection.id, Connection.status == CS.ACTIVE)
                .values(status=CS.EXPIRED)
            )
            if result.rowcount == 1:
                await events.append(
                    s,
                    connection.run_id,
                    "connection.expired",
                    "connection",
                    {"expiresAt": clock.iso(connection.expires_at)},
                    connection_id=connection.id,
                )
                await controller.release(ctx, s, connection.runtime_id, connection.lock_token)
        if result.rowcount == 1:
            expired += 1
        await ctx.hub.close_connection(connection.id, 1000, "lease expired")
    return expired


async def close_orphans(ctx: AppContext) -> None:
    """Leases still active on a run that ended (a server died mid-stop) are closed."""
    async with ctx.db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(Connection.runtime_id, Connection.run_id)
                    .join(Run, Run.id == Connection.run_id)
                    .where(Connection.status == CS.ACTIVE, Run.status != RunStatus.ACTIVE)
                    .distinct()
                )
            ).all()
        )
    for runtime_id, run_id in rows:
        await on_run_end(ctx, runtime_id, run_id)


async def renew_run_locks(ctx: AppContext) -> None:
    await controller.keep_run_connections(ctx)


async def restore_locks(ctx: AppContext) -> None:
    """The lock cache is rebuilt from the runtime rows (after a restart, or a Redis that lost it)."""
    await controller.rebuild_cache(ctx)

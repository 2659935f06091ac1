"""Leases made with an API key that is revoked: revoked too, their controller locks freed, their open
CDP sockets closed.

The process that revokes the key (the API) closes the sockets it holds at once. Sockets are held by
whichever process the client attached through, and there is no cross-process signal for closing
one, so every process also runs `KeySocketSweep` among the supervisor's upkeep jobs (every
`sweep_interval_seconds`): it revokes the leases of keys revoked elsewhere (`bctrl-server keys
revoke`, another replica) and closes the sockets it holds of leases revoked that way."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from app.accounts.models import ApiKey
from app.connections.models import Connection
from app.connections.models import ConnectionStatus as CS
from app.core import clock
from app.core.context import AppContext
from app.runs import events
from app.runtimes import controller

CLOSE_REASON = "api key revoked"


async def revoke_made_with(ctx: AppContext, key_ids: list[uuid.UUID]) -> int:
    """Revoke the active leases the keys made and close their sockets held here; how many were revoked."""
    if not key_ids:
        return 0
    async with ctx.db.transaction() as s:
        rows = list(
            (
                await s.execute(
                    select(Connection)
                    .where(Connection.api_key_id.in_(key_ids), Connection.status == CS.ACTIVE)
                    .with_for_update()
                )
            ).scalars()
        )
        now = clock.now()
        for connection in rows:
            connection.status, connection.revoked_at = CS.REVOKED, now
            await events.append(
                s,
                connection.run_id,
                "connection.revoked",
                "connection",
                {"reason": "api_key_revoked", "keyId": str(connection.api_key_id)},
                connection_id=connection.id,
            )
            await controller.release(ctx, s, connection.runtime_id, connection.lock_token)
    for connection in rows:
        await ctx.hub.close_connection(connection.id, 1000, CLOSE_REASON)
    return len(rows)


class KeySocketSweep:
    """The upkeep job: what another process (or the CLI) revoked reaches the sockets this one holds."""

    __name__ = "close_sockets_of_revoked_keys"
    # Leases revoked a little before the previous sweep are looked at again (clocks, commit order).
    MARGIN = timedelta(seconds=30)

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._since = clock.now() - self.MARGIN

    async def __call__(self) -> None:
        now = clock.now()
        async with self.ctx.db.read() as s:
            pending = list(
                (
                    await s.execute(
                        select(Connection.api_key_id)
                        .join(ApiKey, ApiKey.id == Connection.api_key_id)
                        .where(Connection.status == CS.ACTIVE, ApiKey.revoked_at.is_not(None))
                        .distinct()
                    )
                ).scalars()
            )
            revoked = list(
                (
                    await s.execute(
                        select(Connection.id)
                        .join(ApiKey, ApiKey.id == Connection.api_key_id)
                        .where(
                            Connection.status == CS.REVOKED,
                            Connection.revoked_at >= self._since,
                            ApiKey.revoked_at.is_not(None),
                        )
                    )
                ).scalars()
            )
        await revoke_made_with(self.ctx, pending)
        for connection_id in revoked:
            await self.ctx.hub.close_connection(connection_id, 1000, CLOSE_REASON)
        self._since = now - self.MARGIN

"""Server processes and their heartbeats: how one server knows that another has died.

Each process registers under its driver's instance id (the id it stamps on the browsers it owns and on
the sockets attached through it) and refreshes `seen_at` from the lease reaper. A process is dead when
its host is this host and its pid is gone (or now names another process), or, on another host, when it
has not been seen for DEAD_AFTER. Sockets attached through a dead process never wrote their detach;
the sweep writes it (`connection.detached`, reason `server_died`), so idle timeouts and the flat run
connection's yield count only sockets that exist.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import structlog
from sqlalchemy import delete, select, update

from app.core import clock
from app.core.context import AppContext
from app.runs import events
from app.runs.models import Run
from app.runtimes.models import ServerProcess

log = structlog.get_logger(__name__)

# Heartbeats come every 10 s (the reaper's renewal tick); a process on another host unseen this long is dead.
DEAD_AFTER = timedelta(seconds=45)
# Rows of processes gone this long are deleted.
FORGET_AFTER = timedelta(days=1)


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid`: tells a live process from a new one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def instance_of(ctx: AppContext) -> str:
    return ctx.driver.instance


async def heartbeat(ctx: AppContext) -> None:
    """Register this process, or say it is still alive."""
    now = clock.now()
    async with ctx.db.transaction() as s:
        seen = (
            await s.execute(update(ServerProcess).where(ServerProcess.id == instance_of(ctx)).values(seen_at=now))
        ).rowcount
        if not seen:
            s.add(
                ServerProcess(
                    id=instance_of(ctx),
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    process_start=_process_start(os.getpid()),
                    started_at=now,
                    seen_at=now,
                )
            )
        await s.execute(delete(ServerProcess).where(ServerProcess.seen_at < now - FORGET_AFTER))


async def dead(ctx: AppContext, instances: set[str]) -> set[str]:
    """Which of these server instances are dead (unknown ones are: every process registers before serving)."""
    instances = instances - {instance_of(ctx)}
    if not instances:
        return set()
    async with ctx.db.transaction() as s:
        rows = {
            row.id: row
            for row in (await s.execute(select(ServerProcess).where(ServerProcess.id.in_(instances)))).scalars()
        }
    now, here = clock.now(), socket.gethostname()
    found = set()
    for instance in instances:
        row = rows.get(instance)
        if row is None:
            found.add(instance)
        elif row.host == here:
            if _process_start(row.pid) != row.process_start or row.process_start is None and not _pid_alive(row.pid):
                found.add(instance)
        elif row.seen_at < now - DEAD_AFTER:
            found.add(instance)
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def detach_dead_sockets(ctx: AppContext) -> int:
    """Write the detach of every socket attached through a dead process; returns how many."""
    async with ctx.db.transaction() as s:
        open_now = await events.open_sockets(s)
    gone = await dead(ctx, {instance for _run, _conn, instance, _n in open_now})
    detached = 0
    for run_id, connection_id, instance, _n in open_now:
        if instance not in gone:
            continue
        async with ctx.db.transaction() as s:
            # The run row locked first, then counted again: two sweeping processes write each detach once.
            await s.execute(select(Run.id).where(Run.id == run_id).with_for_update())
            still = [n for _r, _c, i, n in await events.open_sockets(s, run_id, connection_id) if i == instance]
            for _ in range(still[0] if still else 0):
                await events.append(
                    s,
                    run_id,
                    "connection.detached",
                    "connection",
                    {"endedBy": "server", "code": 1006, "reason": "server_died", "serverInstance": instance},
                    source="control-plane",
                    connection_id=connection_id,
                )
                detached += 1
    if detached:
        log.warning("dead_server_sockets_detached", count=detached)
    return detached

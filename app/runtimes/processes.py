"""Server processes and their leases: how one server knows that another has died.

Each process registers under its driver's instance id (the id it stamps on the browsers it owns and on
the sockets attached through it) and renews `seen_at` every third of BCTRL_OWNERSHIP_LEASE_SECONDS
(app/runtimes/ownership.py). Its lease is `seen_at` plus that: a process whose lease has run out is dead,
wherever it runs (judged only by a process whose own lease has held for as long), and so is one that left (its row is deleted at a clean shutdown). On the same machine
and in the same pid namespace, a process whose pid is gone (or now names another process) is dead at
once: a faster answer, never a different one. Sockets attached through a dead process never wrote their
detach; the sweep writes it (`connection.detached`, reason `server_died`), so idle timeouts and the flat
run connection's yield count only sockets that exist.
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
from app.runtimes.models import ServerProcess

log = structlog.get_logger(__name__)

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


def _machine() -> str:
    """This machine and pid namespace: two processes with the same value can judge each other's pids
    (a hostname alone cannot: containers on one host's network share it, each with its own pids)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}#pid:{namespace}"[:255]


def lease(ctx: AppContext) -> timedelta:
    return timedelta(seconds=ctx.settings.ownership_lease_seconds)


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
                    host=_machine(),
                    pid=os.getpid(),
                    process_start=_process_start(os.getpid()),
                    started_at=now,
                    seen_at=now,
                )
            )
        await s.execute(delete(ServerProcess).where(ServerProcess.seen_at < now - FORGET_AFTER))


async def leave(ctx: AppContext) -> None:
    """A clean shutdown: this process's lease ends now, so the runs it leaves are taken over at once."""
    async with ctx.db.transaction() as s:
        await s.execute(delete(ServerProcess).where(ServerProcess.id == instance_of(ctx)))


async def dead(ctx: AppContext, instances: set[str]) -> set[str]:
    """Which of these server instances are dead: their lease ran out, they left, or (same machine) their
    process is gone. Unknown ones are dead: every process registers before it serves."""
    instances = instances - {instance_of(ctx)}
    if not instances:
        return set()
    async with ctx.db.transaction() as s:
        rows = {
            row.id: row
            for row in (await s.execute(select(ServerProcess).where(ServerProcess.id.in_(instances)))).scalars()
        }
    expired_before, here = clock.now() - lease(ctx), _machine()
    # Only a process that has held its own lease for a whole lease judges others' (app/runtimes/ownership.py).
    judging = ctx.lease.judging()
    found = set()
    for instance in instances:
        row = rows.get(instance)
        if row is None or judging and row.seen_at < expired_before:
            found.add(instance)
        elif row.host == here and (
            _process_start(row.pid) != row.process_start or row.process_start is None and not _pid_alive(row.pid)
        ):
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
            # Counted again under the run's lock: sweeping processes and the socket's own write each detach once.
            for _ in range(await events.still_attached(s, run_id, connection_id, instance)):
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

"""Everything a request or a background task needs, built once per server process (app/lifespan.py).

Its parts are typed by ports (core/ports.py and core/driver.py), so the ground floor knows no floor
above it; the implementations are chosen and wired by the assembly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from app.core.ports import AlwaysHeld

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.core.db import Database
    from app.core.driver import Driver
    from app.core.ports import (
        BrowserLinks,
        BrowserWatch,
        EventSink,
        InvocationQueue,
        KeyDigests,
        LockCache,
        ProcessLease,
        RunSubscriptions,
        Screencasts,
        SocketHub,
    )

# Called with (runtime_id, run_id) when a run ends, however it ends (stop, failure, shutdown).
RunEndHook = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]


@dataclass
class AppContext:
    settings: Settings
    db: Database
    driver: Driver
    lock: LockCache
    hub: SocketHub
    notifier: RunSubscriptions
    events: EventSink
    signing_key: bytes = b""
    # How a human-chosen API key is stored and recognised.
    api_keys: KeyDigests | None = None
    supervisor: BrowserWatch | None = None
    screencasts: Screencasts | None = None
    invocations: InvocationQueue | None = None
    # CDP links of the API's in-browser operations (app/browsing/links.py).
    browsing: BrowserLinks | None = None
    run_end_hooks: list[RunEndHook] = field(default_factory=list)
    # Extra checks for /readyz beyond the database (e.g. the lock backend), by name.
    readiness_probes: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    # Serialises the capacity check within this process; PostgreSQL adds an advisory lock across processes.
    capacity_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The warm pool (app/pool/driver.py) when the driver has one: `size()` browsers up or starting ahead.
    pool: Any = None
    # This process's lease on its runs (app/runtimes/ownership.py): what its runs' watchers saw while it
    # may have lapsed (a process paused past it) is not written, since another replica may own them now.
    lease: ProcessLease = field(default_factory=AlwaysHeld)


# The API key of the request being served (set by app/accounts/auth.py), so a lease it makes records
# the key and revoking the key can close the lease's sockets.
acting_key: ContextVar[uuid.UUID | None] = ContextVar("acting_key", default=None)
# The channel of the request being served when it is not the REST API ("tool": an MCP tool call,
# app/mcp), so what it does in a browser is recorded as done through that channel.
acting_channel: ContextVar[str | None] = ContextVar("acting_channel", default=None)


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]

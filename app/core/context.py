"""Everything a request or a background task needs, built once per server process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    import uuid

    from app.accounts.keys import StretchedKeys
    from app.cdp.hub import Hub
    from app.core.config import Settings
    from app.core.db import Database
    from app.drivers.base import Driver
    from app.invocations.worker import InvocationWorker
    from app.live.screencast import ScreencastHub
    from app.locks import ControllerLock
    from app.runs.notifier import RunNotifier
    from app.runs.writer import EventWriter
    from app.runtimes.supervisor import Supervisor

# Called with (runtime_id, run_id) when a run ends, however it ends (stop, failure, shutdown).
RunEndHook = Callable[["uuid.UUID", "uuid.UUID"], Awaitable[None]]


@dataclass
class AppContext:
    settings: Settings
    db: Database
    driver: Driver
    lock: ControllerLock
    hub: Hub
    notifier: RunNotifier
    events: EventWriter
    signing_key: bytes = b""
    # How a human-chosen API key is stored and recognised (app/accounts/keys.py).
    api_keys: StretchedKeys | None = None
    supervisor: Supervisor | None = None
    screencasts: ScreencastHub | None = None
    invocations: InvocationWorker | None = None
    run_end_hooks: list[RunEndHook] = field(default_factory=list)
    # Extra checks for /readyz beyond the database (e.g. the lock backend), by name.
    readiness_probes: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    # Serialises the capacity check within this process; PostgreSQL adds an advisory lock across processes.
    capacity_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx

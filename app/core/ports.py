"""What the ground floor needs from the floors above it, as protocols (ports).

`AppContext` (core/context.py) is typed with these, so `core` imports nothing above it; the classes
that implement them (named in each docstring) are built and wired by app/lifespan.py. A port holds
only what services reach through the context; whatever else an implementation offers is its own.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import Any, Protocol


class LockCache(Protocol):
    """The controller lock's fast copy (app/locks.py: RedisLock, LocalLock); the runtime row decides."""

    async def current(self, runtime_id: str) -> str | None:
        """The cached holder's token, if any."""

    async def put(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        """Cache `token` unless a token of a higher epoch is cached."""

    async def drop(self, runtime_id: str, token: str) -> bool:
        """Forget the cached holder if it is `token`."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Closable(Protocol):
    """An open client socket the hub can close (app/cdp/session.py, live viewers)."""

    connection_id: uuid.UUID
    run_id: uuid.UUID

    def close(self, code: int, reason: str) -> None: ...


class SocketHub(Protocol):
    """This process's open sockets (app/cdp/hub.py: Hub)."""

    def add(self, session: Closable) -> None: ...

    def remove(self, session: Closable) -> None: ...

    async def close_connection(self, connection_id: uuid.UUID, code: int, reason: str) -> None: ...

    async def close_run(self, run_id: uuid.UUID, code: int, reason: str) -> None: ...

    async def close_all(self, code: int, reason: str) -> None: ...


class RunWakeup(AbstractContextManager, Protocol):
    async def wait(self, timeout: float) -> bool: ...


class RunSubscriptions(Protocol):
    """Wake-ups when a run has new events (app/runs/notifier.py: RunNotifier)."""

    def subscribe(self, run_id: uuid.UUID) -> RunWakeup: ...

    def subscribe_all(self) -> RunWakeup:
        """Wake-ups when any run has new events (the account-wide event stream)."""
        ...


class EventSink(Protocol):
    """Where events are appended, batched (app/runs/writer.py: EventWriter): an event of a run, or with
    `run_id` None of a task (`task_id` required then; `conversation_id` and `agent_id` name its
    conversation and agent for the event filters). With `owner` (a server instance), the event is
    written only while that instance owns the run's browser."""

    def emit(
        self,
        run_id: uuid.UUID | None,
        type: str,
        category: str,
        data: dict[str, Any] | None = None,
        *,
        source: str = "browser",
        page_id: str | None = None,
        connection_id: uuid.UUID | None = None,
        task_id: uuid.UUID | None = None,
        conversation_id: uuid.UUID | None = None,
        agent_id: uuid.UUID | None = None,
        owner: str | None = None,
    ) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self, timeout: float = 10.0) -> None: ...


class ProcessLease(Protocol):
    """This server process's lease on the runs it owns (app/runtimes/ownership.py: OwnershipKeeper)."""

    def held(self) -> bool:
        """Surely still this process's: what its runs' watchers see may be written."""

    def judging(self) -> bool:
        """Held without a break for a whole lease: only then may this process judge another dead by its
        lease (after an outage of the shared database every lease looks run out for a moment)."""


class AlwaysHeld:
    """The lease of a process with no keeper (tests that build a context by hand)."""

    def held(self) -> bool:
        return True

    def judging(self) -> bool:
        return True


class Screencasts(Protocol):
    """Shared screencasts per run (app/live/screencast.py: ScreencastHub)."""

    async def subscribe(self, run_id: uuid.UUID, ws_url: str, subscriber: Any) -> Any: ...

    async def unsubscribe(self, cast: Any, subscriber: Any) -> None: ...

    async def close(self) -> None: ...


class Unwatched(Protocol):
    async def wait_observer(self, timeout: float) -> None: ...


class BrowserWatch(Protocol):
    """Follows live browsers and their runs' watchers (app/runtimes/supervisor.py: Supervisor)."""

    def watch(self, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict) -> None: ...

    async def settle(self, runtime_id: uuid.UUID, timeout: float = 5.0) -> None: ...

    def unwatch(self, runtime_id: uuid.UUID, run_ended: bool = True) -> Unwatched: ...

    def watching(self, runtime_id: uuid.UUID) -> bool: ...

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class BrowserLinks(Protocol):
    """The API's CDP links to running browsers, one per run (app/browsing/links.py: BrowserLinks)."""

    def link(self, run_id: uuid.UUID, ws_url: str) -> Any: ...

    async def forget(self, run_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class InvocationQueue(Protocol):
    """Runs queued invocations (app/invocations/worker.py: InvocationWorker)."""

    def wake(self) -> None: ...

    async def recover(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class KeyDigests(Protocol):
    """How a human-chosen API key is stored and recognised (app/accounts/keys.py: StretchedKeys)."""

    def compute(self, secret: str) -> str: ...

    async def digest(self, secret: str) -> str: ...

    def remembered(self, secret: str) -> str | None: ...

    def remember(self, secret: str, digest: str) -> None: ...

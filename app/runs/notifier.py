"""Tells stream and wait handlers that a run has new events, in this process and, through Redis
pub/sub, in every other server process. Handlers then read the events from the database, which
stays the only source of truth: a lost notification delays a reader, it never loses an event."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable

import structlog

from app.core.redisclient import redis_client

log = structlog.get_logger(__name__)


class Subscription:
    """A reader's interest in one run (or, with `run_id` None, in every run), registered before it reads
    so no wake-up falls in between."""

    def __init__(self, notifier: RunNotifier, run_id: uuid.UUID | None) -> None:
        self.notifier = notifier
        self.run_id = run_id
        self.event = asyncio.Event()

    def __enter__(self) -> Subscription:
        self.notifier._subscribers.setdefault(self.run_id, set()).add(self)
        return self

    def __exit__(self, *exc) -> None:
        subscribers = self.notifier._subscribers.get(self.run_id)
        if subscribers is not None:
            subscribers.discard(self)
            if not subscribers:
                del self.notifier._subscribers[self.run_id]

    async def wait(self, timeout: float) -> bool:
        """Until the run got new events since the last wait (True) or `timeout` passes (False)."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()


class RunNotifier:
    def __init__(self, redis_url: str | None = None, prefix: str = "bctrl") -> None:
        self._subscribers: dict[uuid.UUID | None, set[Subscription]] = {}
        self._redis = redis_client(redis_url) if redis_url else None
        self._channel = f"{prefix}:run-events"
        self._listener: asyncio.Task | None = None

    def subscribe(self, run_id: uuid.UUID) -> Subscription:
        return Subscription(self, run_id)

    def subscribe_all(self) -> Subscription:
        """Woken whenever any run gets new events (a reader of many runs filters them itself)."""
        return Subscription(self, None)

    async def start(self) -> None:
        if self._redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="run-notifier")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, run_ids: Iterable[uuid.UUID]) -> None:
        run_ids = set(run_ids)
        for run_id in run_ids:
            self._wake(run_id)
        if self._redis is not None and run_ids:
            try:
                await self._redis.publish(self._channel, " ".join(str(r) for r in run_ids))
            except Exception:
                log.warning("notify_publish_failed", exc_info=True)

    def _wake(self, run_id: uuid.UUID) -> None:
        for subscription in self._subscribers.get(run_id, ()):
            subscription.event.set()
        for subscription in self._subscribers.get(None, ()):
            subscription.event.set()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    # Not listen(): a read timeout (socket_timeout) is just a quiet channel here.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    for raw in str(message["data"]).split():
                        with contextlib.suppress(ValueError):
                            self._wake(uuid.UUID(raw))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("notify_listener_reconnecting", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

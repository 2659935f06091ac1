"""Tells stream and wait handlers that a run has new events, in this process and, through Redis
pub/sub, in every other server process. Handlers then read the events from the database, which
stays the only source of truth: a lost notification delays a reader, it never loses an event."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)


class RunNotifier:
    def __init__(self, redis_url: str | None = None, prefix: str = "bctrl") -> None:
        self._waiters: dict[uuid.UUID, asyncio.Event] = {}
        self._redis = Redis.from_url(redis_url, decode_responses=True) if redis_url else None
        self._channel = f"{prefix}:run-events"
        self._listener: asyncio.Task | None = None

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

    async def wait(self, run_id: uuid.UUID, timeout: float) -> bool:
        """Until the run has new events (True) or `timeout` passes (False)."""
        event = self._waiters.get(run_id)
        if event is None:
            event = self._waiters[run_id] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _wake(self, run_id: uuid.UUID) -> None:
        event = self._waiters.pop(run_id, None)
        if event is not None:
            event.set()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    for raw in str(message["data"]).split():
                        with contextlib.suppress(ValueError):
                            self._wake(uuid.UUID(raw))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("notify_listener_reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

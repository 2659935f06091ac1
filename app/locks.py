"""A cache of who controls each runtime (a CDP lease, an invocation or an input live view).

The truth is the runtime row (app/runtimes/controller.py decides, in the database, with a fencing
epoch); this cache is a copy for quick reads, in Redis or in-process. It is written after each
decision, dropped when a holder lets go, and rebuilt from the database when missing (after a Redis
restart). It never decides anything, so losing it loses nothing: a copy with a higher epoch wins
over a lower one, so a late write cannot put back a holder that was replaced.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from app.core.ports import LockCache
from app.core.redisclient import redis_client


@dataclass(frozen=True)
class Holder:
    kind: str  # "connection", "invocation", "live_view" or "api" (app/runtimes/controller.py)
    id: str

    def token(self, epoch: int) -> str:
        return f"{self.kind}:{self.id}:{epoch}"

    @staticmethod
    def of_token(token: str) -> Holder:
        kind, ident, _epoch = token.split(":", 2)
        return Holder(kind, ident)


def epoch_of(token: str) -> int:
    try:
        return int(token.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return -1


_PUT = """
local held = redis.call('GET', KEYS[1])
if held then
  local epoch = tonumber(string.match(held, ':(%d+)$')) or -1
  if epoch > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLock:
    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis_client(url)
        self.prefix = prefix
        self._put = self.redis.register_script(_PUT)
        self._drop = self.redis.register_script(_DROP)

    def _key(self, runtime_id: str) -> str:
        return f"{self.prefix}:controller:runtime:{runtime_id}"

    async def current(self, runtime_id: str) -> str | None:
        return await self.redis.get(self._key(runtime_id))

    async def put(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._put(keys=[self._key(runtime_id)], args=[token, epoch_of(token), max(1, ttl_ms)]))

    # The name older callers (and tests) use for putting a known holder back.
    restore = put

    async def drop(self, runtime_id: str, token: str) -> bool:
        return bool(await self._drop(keys=[self._key(runtime_id)], args=[token]))

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


class LocalLock:
    """The same cache in one process, expiring by the monotonic clock."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._mutex = asyncio.Lock()

    def _live(self, runtime_id: str) -> str | None:
        entry = self._held.get(runtime_id)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._held[runtime_id]
            return None
        return entry[0]

    async def current(self, runtime_id: str) -> str | None:
        return self._live(runtime_id)

    async def put(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        async with self._mutex:
            held = self._live(runtime_id)
            if held is not None and epoch_of(held) > epoch_of(token):
                return False
            self._held[runtime_id] = (token, time.monotonic() + ttl_ms / 1000)
            return True

    restore = put

    async def drop(self, runtime_id: str, token: str) -> bool:
        async with self._mutex:
            if self._live(runtime_id) == token:
                del self._held[runtime_id]
                return True
            return False

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._held.clear()


def make_lock(redis_url: str | None, prefix: str) -> LockCache:
    return RedisLock(redis_url, prefix) if redis_url else LocalLock()

"""The controller lock: at most one controller (CDP lease, invocation, input live view) per runtime.

On Redis the lock is a key set with `SET NX PX`; its value names the holder and carries a fencing
token (a per-runtime counter), and release and renewal are compare-and-delete and
compare-and-expire scripts, so a holder whose lock expired and was taken by another cannot
release or extend the new holder's lock. The in-process twin has the same interface for the
embedded default (one server process).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True)
class Holder:
    kind: str  # "connection", "invocation" or "live_view"
    id: str

    def token(self, fence: int) -> str:
        return f"{self.kind}:{self.id}:{fence}"

    @staticmethod
    def of_token(token: str) -> Holder:
        kind, ident, _fence = token.split(":", 2)
        return Holder(kind, ident)


class LockBusy(Exception):
    def __init__(self, token: str) -> None:
        self.token = token
        self.holder = Holder.of_token(token)
        super().__init__(f"held by {self.holder.kind} {self.holder.id}")


class ControllerLock(Protocol):
    async def acquire(self, runtime_id: str, holder: Holder, ttl_ms: int) -> str:
        """Take the lock and return its token, or raise LockBusy naming the current holder."""

    async def release(self, runtime_id: str, token: str) -> bool:
        """Release if `token` still holds the lock."""

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        """Extend if `token` still holds the lock."""

    async def current(self, runtime_id: str) -> str | None:
        """The token holding the lock, if any."""

    async def restore(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        """Put back a token known to be valid (after a restart), unless another holds the lock."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


_ACQUIRE = """
local fence = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. ':' .. fence
if redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2]) then
  return {1, token}
end
return {0, redis.call('GET', KEYS[1])}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLock:
    def __init__(self, url: str, prefix: str) -> None:
        self.redis = Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)
        self._renew = self.redis.register_script(_RENEW)

    def _key(self, runtime_id: str) -> str:
        return f"{self.prefix}:lock:runtime:{runtime_id}"

    async def acquire(self, runtime_id: str, holder: Holder, ttl_ms: int) -> str:
        ok, value = await self._acquire(keys=[self._key(runtime_id), f"{self._key(runtime_id)}:fence"],
                                        args=[f"{holder.kind}:{holder.id}", ttl_ms])
        if ok:
            return value
        if value is None:  # expired between SET and GET: try once more
            return await self.acquire(runtime_id, holder, ttl_ms)
        raise LockBusy(value)

    async def release(self, runtime_id: str, token: str) -> bool:
        return bool(await self._release(keys=[self._key(runtime_id)], args=[token]))

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._renew(keys=[self._key(runtime_id)], args=[token, ttl_ms]))

    async def current(self, runtime_id: str) -> str | None:
        return await self.redis.get(self._key(runtime_id))

    async def restore(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.redis.set(self._key(runtime_id), token, nx=True, px=ttl_ms))

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


class LocalLock:
    """Same semantics in one process: expiry by monotonic clock, fences from a counter."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._fences: dict[str, int] = {}
        self._mutex = asyncio.Lock()

    def _live(self, runtime_id: str) -> str | None:
        entry = self._held.get(runtime_id)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._held[runtime_id]
            return None
        return entry[0]

    async def acquire(self, runtime_id: str, holder: Holder, ttl_ms: int) -> str:
        async with self._mutex:
            current = self._live(runtime_id)
            if current is not None:
                raise LockBusy(current)
            fence = self._fences.get(runtime_id, 0) + 1
            self._fences[runtime_id] = fence
            token = holder.token(fence)
            self._held[runtime_id] = (token, time.monotonic() + ttl_ms / 1000)
            return token

    async def release(self, runtime_id: str, token: str) -> bool:
        async with self._mutex:
            if self._live(runtime_id) == token:
                del self._held[runtime_id]
                return True
            return False

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        async with self._mutex:
            if self._live(runtime_id) == token:
                self._held[runtime_id] = (token, time.monotonic() + ttl_ms / 1000)
                return True
            return False

    async def current(self, runtime_id: str) -> str | None:
        return self._live(runtime_id)

    async def restore(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        async with self._mutex:
            if self._live(runtime_id) is not None:
                return False
            self._held[runtime_id] = (token, time.monotonic() + ttl_ms / 1000)
            fence = int(token.rsplit(":", 1)[1])
            self._fences[runtime_id] = max(self._fences.get(runtime_id, 0), fence)
            return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._held.clear()


def make_lock(redis_url: str | None, prefix: str) -> ControllerLock:
    return RedisLock(redis_url, prefix) if redis_url else LocalLock()

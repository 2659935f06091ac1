"""The one way this server opens a Redis client, so every user of Redis behaves the same in an outage."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# A Redis that hangs must not hang requests: calls give up after this long.
TIMEOUT_SECONDS = 5.0


def redis_client(url: str) -> Redis:
    """Bounded timeouts, and one immediate retry on a connection error: after a Redis restart each
    pooled connection is dead and its first command would fail though Redis answers again. A command
    that failed to send did not run, so the retry is safe for the scripts used here (compare-and-set)."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )

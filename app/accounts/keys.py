"""How API keys are stored: what a stolen copy of the database reveals about them.

- Minted keys (`bctrl_` + 256 random bits) are stored as a SHA-256 digest: there is nothing to
  brute-force, and a fast digest keeps lookup one indexed read.
- A human-chosen `BCTRL_API_KEY` could be guessed from a fast digest, so it is stretched with
  scrypt (salted per deployment) and then keyed with the server key. The result is still
  deterministic, so lookup stays one indexed read, but testing one guess against a copied row
  costs a scrypt run. The stretch is computed once per process and secret (kept in memory
  under a process-random key) and at most one at a time, so a flood of unknown bearers cannot
  take more than one core.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict

STRETCHED_PREFIX = "k1$"
# scrypt cost: 16 MiB and about 40 ms a guess here; enough to make guessing a chosen key expensive.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
_CACHE_SIZE = 256


def minted_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class StretchedKeys:
    """Computes (and remembers, for known keys only) the stored form of a human-chosen key."""

    def __init__(self, server_key: bytes) -> None:
        self._key = server_key
        self._salt = hmac.new(server_key, b"api-key-salt", hashlib.sha256).digest()
        self._memo_key = secrets.token_bytes(32)
        self._known: OrderedDict[bytes, str] = OrderedDict()
        self._one_at_a_time = asyncio.Lock()

    def _memo(self, secret: str) -> bytes:
        return hmac.new(self._memo_key, secret.encode(), hashlib.sha256).digest()

    def compute(self, secret: str) -> str:
        stretched = hashlib.scrypt(secret.encode(), salt=self._salt, **_SCRYPT)
        keyed = hmac.new(self._key, b"api-key:" + stretched, hashlib.sha256).digest()
        return STRETCHED_PREFIX + base64.urlsafe_b64encode(keyed).decode().rstrip("=")

    def remembered(self, secret: str) -> str | None:
        return self._known.get(self._memo(secret))

    async def digest(self, secret: str) -> str:
        memo = self._memo(secret)
        if (known := self._known.get(memo)) is not None:
            return known
        async with self._one_at_a_time:
            return await asyncio.to_thread(self.compute, secret)

    def remember(self, secret: str, digest: str) -> None:
        """Only keys that authenticated are remembered, so junk bearers cannot fill the memo."""
        memo = self._memo(secret)
        self._known[memo] = digest
        self._known.move_to_end(memo)
        while len(self._known) > _CACHE_SIZE:
            self._known.popitem(last=False)

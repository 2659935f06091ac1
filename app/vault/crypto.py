"""Sealing a secret's fields at rest under the server key.

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from the server key with the vault's own label
(not the AI credentials' one: a leak of one box's key opens nothing of the other). Each sealed field is
bound to its secret and field name, so a sealed column copied to another row or field does not open
there."""

from __future__ import annotations

import base64
import hashlib
import uuid

import orjson
from cryptography.fernet import Fernet, InvalidToken

LABEL = b"bctrl:vault-secrets:v1:"


class VaultBox:
    def __init__(self, server_key: bytes) -> None:
        digest = hashlib.sha256(LABEL + server_key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret_id: uuid.UUID, field: str, plaintext: str) -> str:
        payload = orjson.dumps({"s": str(secret_id), "f": field, "v": plaintext})
        return self._fernet.encrypt(payload).decode()

    def open(self, secret_id: uuid.UUID, field: str, sealed: str) -> str | None:
        """The plaintext, or None when it was sealed under another server key or for another place."""
        try:
            payload = orjson.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            return None
        if payload.get("s") != str(secret_id) or payload.get("f") != field:
            return None
        return payload.get("v")

"""Encryption at rest for credentials the server must be able to use again (LLM API keys).

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from the server key. Set
BCTRL_SECRET_KEY so that key lives outside the database; when it is generated and kept in the
database, encryption only protects copies of single columns, and the closing note says so.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, server_key: bytes) -> None:
        digest = hashlib.sha256(b"bctrl:ai-credentials:" + server_key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The plaintext, or None when it was sealed under another server key."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None

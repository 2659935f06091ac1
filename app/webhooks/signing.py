"""Webhook secrets and signatures (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
`webhook-signature` = `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`).

A secret (`whsec_` + base64 of 24 random bytes) is shown once, at create and at rotate-secret, and kept
sealed under a key derived from the server key for webhooks alone, bound to its webhook and field (a
sealed value copied to another row does not open there)."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime

from standardwebhooks import Webhook as Signer

from app.core import server_key
from app.core.context import AppContext
from app.vault.crypto import VaultBox

CURRENT = "secret"
PREVIOUS = "previous_secret"


def new_secret(nbytes: int = 24) -> str:
    """A Standard Webhooks signing secret (`whsec_` and base64 of `nbytes` random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _box(ctx: AppContext) -> VaultBox:
    return VaultBox(server_key.derive(ctx.signing_key, "webhooks", "secret-box").encode())


def seal(ctx: AppContext, webhook_id: uuid.UUID, field: str, secret: str) -> str:
    return _box(ctx).seal(webhook_id, field, secret)


def unseal(ctx: AppContext, webhook_id: uuid.UUID, field: str, sealed: str | None) -> str | None:
    """The secret, or None (none kept, or sealed under another server key)."""
    return _box(ctx).open(webhook_id, field, sealed) if sealed else None


def headers(keys: list[str], msg_id: str, when: datetime, body: bytes | str) -> dict[str, str]:
    """The three Standard Webhooks headers; one `v1` signature per key (two during a rotation's overlap)."""
    signatures = [Signer(key).sign(msg_id, when, body) for key in keys]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }

"""Viewer tokens: what a live-view or replay URL carries. Signed with the server key, short-lived,
and stateless, so any server process sharing the database can check one. A forged, altered or
expired token is refused without saying anything about the run it names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

import orjson

from app.core.errors import Unauthorized

KINDS = ("live", "replay")


@dataclass(frozen=True)
class ViewerToken:
    kind: str  # "live" or "replay"
    viewer_id: uuid.UUID
    run_id: uuid.UUID
    account_id: uuid.UUID
    control: str  # "none" or "input" (replay: "none")
    expires_at: float  # epoch seconds


def _sign(key: bytes, payload: bytes) -> str:
    digest = hmac.new(key, b"viewer:" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def mint(key: bytes, token: ViewerToken) -> str:
    payload = (
        base64.urlsafe_b64encode(
            orjson.dumps(
                {
                    "k": token.kind,
                    "v": token.viewer_id.hex,
                    "r": token.run_id.hex,
                    "a": token.account_id.hex,
                    "c": token.control,
                    "e": int(token.expires_at),
                }
            )
        )
        .decode()
        .rstrip("=")
    )
    return f"{payload}.{_sign(key, payload.encode())}"


def invalid() -> Unauthorized:
    return Unauthorized("This viewer link is invalid or has expired; ask for a new one", code="viewer.token_invalid")


def verify(key: bytes, raw: str | None, kind: str) -> ViewerToken:
    try:
        payload, signature = (raw or "").split(".", 1)
        if not hmac.compare_digest(signature, _sign(key, payload.encode())):
            raise ValueError("signature")
        data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        token = ViewerToken(
            kind=data["k"],
            viewer_id=uuid.UUID(data["v"]),
            run_id=uuid.UUID(data["r"]),
            account_id=uuid.UUID(data["a"]),
            control=data["c"],
            expires_at=float(data["e"]),
        )
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise invalid() from None
    if token.kind != kind or token.expires_at <= time.time():
        raise invalid()
    return token

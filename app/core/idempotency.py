"""Idempotency-Key: the same key and request replays the first successful response."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock, ids
from app.core.db import Base, Database
from app.core.errors import Conflict, InvalidRequest
from app.core.responses import JSONResponse

RETENTION = timedelta(hours=24)
# A request still "in progress" after this long was abandoned (longer than any launch can take).
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 200


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Null while the first request is still being served.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


Handler = Callable[[], Awaitable[tuple[int, Any]]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The request's Idempotency-Key scope, a route dependency (`IdempotencyDep` in app/accounts/auth.py).

    `once(make, body)` runs `make` the first time and returns its model (the route's response model);
    a later request with the same key and fingerprint gets the stored response instead, with the
    status it had and `Idempotency-Replayed: true`."""

    db: Database
    account_id: uuid.UUID
    key: str | None
    method: str
    path: str
    status: int
    # Keys the fingerprint (the server's key): a body may hold a secret (a proxy's password), and a plain
    # hash of it, all else known, could be checked against guesses by whoever reads the database.
    secret: bytes = b""

    async def once(self, make: Callable[[], Awaitable[M]], body: Any) -> M | JSONResponse:
        if self.key is None:
            return await make()
        made: M | None = None

        async def handler() -> tuple[int, Any]:
            nonlocal made
            made = await make()
            return self.status, made.model_dump(mode="json")  # wire models serialise by alias

        request_hash = fingerprint(self.method, self.path, body, self.secret)
        response = await respond(self.db, self.account_id, self.key, request_hash, handler)
        return response if made is None else made  # a replay, or the model this request made


def fingerprint(method: str, route: str, body: Any, secret: bytes = b"") -> str:
    """What a key's record keeps of the request: SHA-256 of it, or HMAC-SHA256 under `secret` when given."""
    raw = orjson.dumps({"m": method, "r": route, "b": body}, option=orjson.OPT_SORT_KEYS)
    if secret:
        return hmac.new(secret, b"idempotency\0" + raw, hashlib.sha256).hexdigest()
    return hashlib.sha256(raw).hexdigest()


async def respond(db: Database, account_id: uuid.UUID, key: str, request_hash: str, handler: Handler) -> JSONResponse:
    """Serve `handler` once per key; later calls with the same key and request get the stored response."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            details={
                "fields": [
                    {
                        "field": "Idempotency-Key",
                        "in": "header",
                        "message": "length out of range",
                        "type": "string_length",
                    }
                ]
            },
        )
    record_id = await _claim(db, account_id, key, request_hash)
    if not isinstance(record_id, uuid.UUID):
        return record_id
    try:
        status, body = await handler()
    except BaseException:
        # Only successful responses are replayed: a failure frees the key for a retry.
        async with db.transaction() as s:
            await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        raise
    async with db.transaction() as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(status_code=status, response={"body": body})
        )
    return JSONResponse(body, status_code=status)


async def _claim(db: Database, account_id: uuid.UUID, key: str, request_hash: str) -> uuid.UUID | JSONResponse:
    now = clock.now()
    record_id = ids.new_id()
    try:
        async with db.transaction() as s:
            await s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.account_id == account_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.created_at < now - RETENTION,
                )
            )
            s.add(
                IdempotencyRecord(
                    id=record_id, account_id=account_id, key=key, request_hash=request_hash, created_at=now
                )
            )
        return record_id
    except IntegrityError:
        pass
    async with db.transaction() as s:
        existing = (
            await s.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
                )
            )
        ).scalar_one_or_none()
    if existing is None:
        # The first request failed and released the key between our insert and this read.
        return await _claim(db, account_id, key, request_hash)
    if existing.request_hash != request_hash:
        raise Conflict(
            "Idempotency-Key was already used with a different request",
            code="idempotency.conflict",
            details={"idempotencyKey": key},
        )
    if existing.status_code is None and existing.created_at < clock.now() - ABANDONED_AFTER:
        # Its server died mid-request: the key is free again.
        async with db.transaction() as s:
            await s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == existing.id, IdempotencyRecord.status_code.is_(None)
                )
            )
        return await _claim(db, account_id, key, request_hash)
    if existing.status_code is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress",
            code="idempotency.in_progress",
            details={"idempotencyKey": key},
            headers={"Retry-After": "1"},
        )
    return JSONResponse(
        existing.response["body"], status_code=existing.status_code, headers={"Idempotency-Replayed": "true"}
    )

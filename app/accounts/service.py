"""Accounts and API keys: keys are stored as hashes and compared in constant time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.accounts.models import Account, ApiKey
from app.core import clock, ids
from app.core.db import Database
from app.core.errors import Unauthorized

KEY_PREFIX = "bctrl_"
BOOTSTRAP_ACCOUNT_NAME = "default"


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    key_id: uuid.UUID


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    account_id: uuid.UUID
    secret: str


async def authenticate(db: Database, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("API key is missing: send Authorization: Bearer <key>")
    digest = ids.hash_secret(secret)
    async with db.transaction() as s:
        key = (await s.execute(select(ApiKey).where(ApiKey.key_hash == digest))).scalar_one_or_none()
    if key is None or key.revoked_at is not None or not ids.secret_matches(secret, key.key_hash):
        raise Unauthorized("API key is missing or invalid")
    return Principal(account_id=key.account_id, key_id=key.id)


async def create_account(db: Database, name: str) -> Account:
    account = Account(id=ids.new_id(), name=name, created_at=clock.now())
    async with db.transaction() as s:
        s.add(account)
    return account


async def create_key(db: Database, account_id: uuid.UUID, name: str = "api key",
                     secret: str | None = None) -> NewKey:
    """Mint a key; the secret is returned here and never again."""
    secret = secret or ids.new_secret(KEY_PREFIX)
    key = ApiKey(id=ids.new_id(), account_id=account_id, name=name, prefix=secret[:12],
                 key_hash=ids.hash_secret(secret), created_at=clock.now())
    async with db.transaction() as s:
        s.add(key)
    return NewKey(id=key.id, account_id=account_id, secret=secret)


async def ensure_bootstrap_key(db: Database, secret: str) -> Principal:
    """BCTRL_API_KEY: accepted for the default account, created on first start."""
    digest = ids.hash_secret(secret)
    async with db.transaction() as s:
        key = (await s.execute(select(ApiKey).where(ApiKey.key_hash == digest))).scalar_one_or_none()
        if key is not None:
            return Principal(account_id=key.account_id, key_id=key.id)
        account = (await s.execute(select(Account).where(Account.name == BOOTSTRAP_ACCOUNT_NAME)
                                   .order_by(Account.id).limit(1))).scalar_one_or_none()
        if account is None:
            account = Account(id=ids.new_id(), name=BOOTSTRAP_ACCOUNT_NAME, created_at=clock.now())
            s.add(account)
        key = ApiKey(id=ids.new_id(), account_id=account.id, name="bootstrap (BCTRL_API_KEY)",
                     prefix=secret[:12], key_hash=digest, created_at=clock.now())
        s.add(key)
    return Principal(account_id=account.id, key_id=key.id)


async def get_or_create_account(db: Database, name: str) -> Account:
    async with db.transaction() as s:
        account = (await s.execute(select(Account).where(Account.name == name)
                                   .order_by(Account.id).limit(1))).scalar_one_or_none()
    return account or await create_account(db, name)

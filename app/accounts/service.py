"""Accounts and API keys: keys are stored as hashes (app/accounts/keys.py) and compared in constant time."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.accounts.keys import StretchedKeys, minted_digest
from app.accounts.models import Account, ApiKey
from app.core import clock, ids
from app.core.db import Database
from app.core.errors import Unauthorized

KEY_PREFIX = "bctrl_"
BOOTSTRAP_ACCOUNT_NAME = "default"
BOOTSTRAP_KEY_NAME = "bootstrap (BCTRL_API_KEY)"


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    key_id: uuid.UUID


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    account_id: uuid.UUID
    secret: str


async def authenticate(db: Database, secret: str | None, stretched: StretchedKeys | None = None) -> Principal:
    if not secret:
        raise Unauthorized("API key is missing: send Authorization: Bearer <key>")
    known = stretched.remembered(secret) if stretched is not None else None
    key = await _key_with_hash(db, known or minted_digest(secret))
    if key is None and known is None and stretched is not None:
        # Not a minted key: perhaps the human-chosen BCTRL_API_KEY, stored stretched.
        digest = await stretched.digest(secret)
        key = await _key_with_hash(db, digest)
        if key is not None and key.revoked_at is None:
            stretched.remember(secret, digest)
    if key is None or key.revoked_at is not None:
        raise Unauthorized("API key is missing or invalid")
    return Principal(account_id=key.account_id, key_id=key.id)


async def _key_with_hash(db: Database, digest: str) -> ApiKey | None:
    async with db.read() as s:
        key = (await s.execute(select(ApiKey).where(ApiKey.key_hash == digest))).scalar_one_or_none()
    # The lookup is by an indexed equality; the comparison that decides is constant-time.
    return key if key is not None and ids.constant_time_equal(key.key_hash, digest) else None


async def create_account(db: Database, name: str) -> Account:
    account = Account(id=ids.new_id(), name=name, created_at=clock.now())
    async with db.transaction() as s:
        s.add(account)
    return account


async def create_key(db: Database, account_id: uuid.UUID, name: str = "api key", secret: str | None = None) -> NewKey:
    """Mint a key; the secret is returned here and never again."""
    secret = secret or ids.new_secret(KEY_PREFIX)
    key = ApiKey(
        id=ids.new_id(),
        account_id=account_id,
        name=name,
        prefix=secret[:12],
        key_hash=minted_digest(secret),
        created_at=clock.now(),
    )
    async with db.transaction() as s:
        s.add(key)
    return NewKey(id=key.id, account_id=account_id, secret=secret)


async def ensure_bootstrap_key(db: Database, secret: str, stretched: StretchedKeys) -> Principal:
    """BCTRL_API_KEY: accepted for the default account, stored stretched (it may be human-chosen).

    It is the only bootstrap key: when the variable changes, the key it replaced stops working, and a
    row written by an older server as a plain SHA-256 digest is rewritten in the stretched form."""
    digest = await asyncio.to_thread(stretched.compute, secret)
    try:
        principal = await _store_bootstrap_key(db, secret, digest)
    except IntegrityError:
        principal = await _store_bootstrap_key(db, secret, digest)  # another server stored it first
    stretched.remember(secret, digest)
    return principal


async def _store_bootstrap_key(db: Database, secret: str, digest: str) -> Principal:
    now = clock.now()
    async with db.transaction() as s:
        key = (
            await s.execute(select(ApiKey).where(ApiKey.key_hash.in_([digest, minted_digest(secret)])))
        ).scalar_one_or_none()
        if key is not None:
            key.key_hash, key.revoked_at, key.prefix = digest, None, _shown_prefix(secret)
            account_id = key.account_id
        else:
            account = (
                await s.execute(
                    select(Account).where(Account.name == BOOTSTRAP_ACCOUNT_NAME).order_by(Account.id).limit(1)
                )
            ).scalar_one_or_none()
            if account is None:
                account = Account(id=ids.new_id(), name=BOOTSTRAP_ACCOUNT_NAME, created_at=now)
                s.add(account)
                await s.flush()
            key = ApiKey(
                id=ids.new_id(),
                account_id=account.id,
                name=BOOTSTRAP_KEY_NAME,
                prefix=_shown_prefix(secret),
                key_hash=digest,
                created_at=now,
            )
            s.add(key)
            account_id = account.id
        await s.flush()
        await s.execute(
            update(ApiKey)
            .where(ApiKey.name == BOOTSTRAP_KEY_NAME, ApiKey.id != key.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return Principal(account_id=account_id, key_id=key.id)


def _shown_prefix(secret: str) -> str:
    # A chosen key's first characters would give part of it away: show only that it came from the environment.
    return secret[:12] if secret.startswith(KEY_PREFIX) and len(secret) >= 40 else "env:BCTRL_API_KEY"


async def get_or_create_account(db: Database, name: str) -> Account:
    async with db.read() as s:
        account = (
            await s.execute(select(Account).where(Account.name == name).order_by(Account.id).limit(1))
        ).scalar_one_or_none()
    return account or await create_account(db, name)

"""Accounts and API keys: keys are stored as hashes (app/accounts/keys.py) and compared in constant time."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.accounts import usage
from app.accounts.keys import STRETCHED_PREFIX, StretchedKeys, minted_digest
from app.accounts.models import Account, AccountStatus, ApiKey
from app.core import clock, ids
from app.core.db import Database
from app.core.errors import Conflict, DomainError, NotFound, Unauthorized
from app.core.paging import PageParams, fetch_by_id

KEY_PREFIX = "bctrl_"
BOOTSTRAP_ACCOUNT_NAME = "default"
BOOTSTRAP_KEY_NAME = "bootstrap (BCTRL_API_KEY)"


@dataclass(frozen=True)
class Principal:
    # The tenant the request acts in: every resource is looked up under it (another tenant's is 404).
    account_id: uuid.UUID
    key_id: uuid.UUID
    # The key's scopes (app/accounts/scopes.py); empty: everything.
    scopes: tuple[str, ...] = ()
    # The top-level account (organization): the key's own, or its parent for a subaccount's key.
    organization_id: uuid.UUID | None = None
    # Set when acting in a subaccount: with its own key, or a parent's key and BCTRL-Subaccount-Id.
    subaccount_id: uuid.UUID | None = None
    # The subaccount acted in is archived (a parent may still read its records, not write).
    archived: bool = False

    @property
    def org_id(self) -> uuid.UUID:
        return self.organization_id or self.account_id

    @property
    def in_subaccount(self) -> bool:
        return self.subaccount_id is not None


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    account_id: uuid.UUID
    secret: str


def subaccount_not_found(value: object) -> NotFound:
    return NotFound("Subaccount not found", code="subaccount.not_found", details={"subaccountId": str(value)})


async def authenticate(
    db: Database, secret: str | None, stretched: StretchedKeys | None = None, subaccount: str | None = None
) -> Principal:
    """Who the key is and which tenant the request acts in. `subaccount` (BCTRL-Subaccount-Id) picks one
    of the key's account's subaccounts: an id that is not one of them is 404 `subaccount.not_found`, so a
    subaccount's key cannot reach its parent or a sibling, and ids of other accounts cannot be probed."""
    if not secret:
        raise Unauthorized("API key is missing: send Authorization: Bearer <key>")
    known = stretched.remembered(secret) if stretched is not None else None
    found = await _key_with_hash(db, known or minted_digest(secret))
    if found is None and known is None and stretched is not None:
        # Not a minted key: perhaps the human-chosen BCTRL_API_KEY, stored stretched.
        digest = await stretched.digest(secret)
        found = await _key_with_hash(db, digest)
        if found is not None and found[0].revoked_at is None:
            stretched.remember(secret, digest)
    if found is None or found[0].revoked_at is not None:
        raise Unauthorized("API key is missing or invalid")
    key, account = found
    if key.expires_at is not None and key.expires_at <= clock.now():
        raise Unauthorized("API key has expired", code="auth.expired", details={"keyId": str(key.id)})
    if account.status == AccountStatus.ARCHIVED:
        raise Unauthorized(
            "The subaccount of this API key is archived", code="subaccount.archived", details={"keyId": str(key.id)}
        )
    await usage.note(db, key.id)
    scopes = tuple(key.scopes or ())
    if account.parent_id is not None:  # a subaccount's own key: it acts in its subaccount only
        if subaccount is not None and subaccount != str(account.id):
            raise subaccount_not_found(subaccount)
        return Principal(account.id, key.id, scopes, account.parent_id, account.id)
    if subaccount is None:
        return Principal(account.id, key.id, scopes, account.id)
    child = await _child(db, account.id, subaccount)
    return Principal(child.id, key.id, scopes, account.id, child.id, child.status == AccountStatus.ARCHIVED)


async def _child(db: Database, parent_id: uuid.UUID, subaccount: str) -> Account:
    child_id = ids.parse_uuid(subaccount)
    async with db.read() as s:
        child = await s.get(Account, child_id) if child_id else None
    if child is None or child.parent_id != parent_id:
        raise subaccount_not_found(subaccount)
    return child


async def _key_with_hash(db: Database, digest: str) -> tuple[ApiKey, Account] | None:
    async with db.read() as s:
        row = (
            await s.execute(
                select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id).where(ApiKey.key_hash == digest)
            )
        ).one_or_none()
    # The lookup is by an indexed equality; the comparison that decides is constant-time.
    if row is None or not ids.constant_time_equal(row[0].key_hash, digest):
        return None
    return row[0], row[1]


async def create_account(db: Database, name: str) -> Account:
    account = Account(id=ids.new_id(), name=name, created_at=clock.now())
    async with db.transaction() as s:
        s.add(account)
    return account


async def create_key(
    db: Database,
    account_id: uuid.UUID,
    name: str = "api key",
    secret: str | None = None,
    *,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
) -> NewKey:
    """Mint a key; the secret is returned here and never again."""
    key, secret = await mint_key(db, account_id, name, secret, expires_at=expires_at, scopes=scopes)
    return NewKey(id=key.id, account_id=account_id, secret=secret)


async def mint_key(
    db: Database,
    account_id: uuid.UUID,
    name: str,
    secret: str | None = None,
    *,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """The stored key (its hash only) and its secret, which is shown once and kept nowhere."""
    secret = secret or ids.new_secret(KEY_PREFIX)
    now = clock.now()
    if name == BOOTSTRAP_KEY_NAME:
        # The name marks the key BCTRL_API_KEY made; a minted key must not pass for it.
        raise DomainError(
            f"The name {BOOTSTRAP_KEY_NAME!r} is reserved for the key BCTRL_API_KEY makes",
            code="request.invalid",
            details={"fields": [{"field": "name", "in": "body", "message": "reserved", "type": "value"}]},
        )
    if expires_at is not None and expires_at <= now:
        raise DomainError(
            "expiresAt must be in the future",
            code="request.invalid",
            details={"fields": [{"field": "expiresAt", "in": "body", "message": "in the past", "type": "value"}]},
        )
    key = ApiKey(
        id=ids.new_id(),
        account_id=account_id,
        name=name,
        prefix=secret[:12],
        key_hash=minted_digest(secret),
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        usage_count=0,
        scopes=scopes or None,
    )
    async with db.transaction() as s:
        s.add(key)
    return key, secret


def key_not_found(key_id: object) -> NotFound:
    return NotFound("API key not found", code="api_key.not_found", details={"keyId": str(key_id)})


async def get_key(db: Database, account_id: uuid.UUID, key_id: str, *, or_child_of: bool = False) -> ApiKey:
    """An active (not revoked) key of the account (or, `or_child_of`, of one of its subaccounts: a
    parent manages its subaccounts' keys); anything else is 404."""
    parsed = ids.parse_uuid(key_id)
    async with db.read() as s:
        key = await s.get(ApiKey, parsed) if parsed else None
        owner = await s.get(Account, key.account_id) if key is not None and key.account_id != account_id else None
    mine = key is not None and (
        key.account_id == account_id or (or_child_of and owner is not None and owner.parent_id == account_id)
    )
    if not mine or key.revoked_at is not None:
        raise key_not_found(key_id)
    return key


async def list_keys(
    db: Database,
    account_id: uuid.UUID,
    page: PageParams,
    *,
    newest_first: bool = True,
    own: bool = True,
    children: bool = False,
) -> tuple[list[ApiKey], str | None]:
    """The account's keys that are not revoked (expired ones too, so they can be seen and deleted):
    its `own`, its subaccounts' (`children`), or both."""
    whose = [Account.id == account_id] if own else []
    whose += [Account.parent_id == account_id] if children else []
    owned = ApiKey.account_id.in_(select(Account.id).where(or_(*whose)))
    stmt = select(ApiKey).where(owned, ApiKey.revoked_at.is_(None))
    return await fetch_by_id(db, stmt, ApiKey.id, page, newest_first=newest_first)


async def parents_of(db: Database, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each account's parent (None: a top-level account), to tell organization keys from subaccount keys."""
    if not account_ids:
        return {}
    async with db.read() as s:
        rows = (await s.execute(select(Account.id, Account.parent_id).where(Account.id.in_(account_ids)))).all()
    return dict(rows)


async def reissue_key(db: Database, key: ApiKey) -> tuple[ApiKey, str]:
    """A fresh secret for an existing minted key (an Idempotency-Key replay of its create): the
    secret it had stops working at once."""
    secret = ids.new_secret(KEY_PREFIX)
    async with db.transaction() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == key.id).with_for_update())).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            raise key_not_found(key.id)
        row.key_hash, row.prefix, row.updated_at = minted_digest(secret), secret[:12], clock.now()
    return row, secret


def is_bootstrap(key: ApiKey) -> bool:
    """The key BCTRL_API_KEY made: the only one stored stretched (its name could be chosen by anyone)."""
    return key.key_hash.startswith(STRETCHED_PREFIX)


async def revoke_key(db: Database, by: Principal, key: ApiKey) -> ApiKey:
    """Revoke `key` at once (the next request with it is 401). A key cannot revoke itself, so an
    account always keeps a key that works (rotation is create, cut over, then revoke the old key with
    the new one); the bootstrap key is managed by `BCTRL_API_KEY`, which would bring it back."""
    if key.id == by.key_id:
        raise DomainError(
            "A key cannot revoke itself: revoke it with another key of the account",
            code="auth.forbidden",
            status=403,
            details={"keyId": str(key.id), "reason": "self"},
        )
    if is_bootstrap(key):
        raise DomainError(
            "The bootstrap key comes from BCTRL_API_KEY: change or unset the variable to retire it",
            code="auth.forbidden",
            status=403,
            details={"keyId": str(key.id), "reason": "bootstrap"},
        )
    now = clock.now()
    async with db.transaction() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == key.id).with_for_update())).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            raise key_not_found(key.id)
        row.revoked_at = row.updated_at = now
    usage.forget(key.id)
    return row


async def get_account(db: Database, account_id: uuid.UUID) -> Account:
    async with db.read() as s:
        account = await s.get(Account, account_id)
    if account is None:  # its key authenticated a moment ago: the account was deleted since
        raise NotFound("Account not found", code="organization.not_found")
    return account


async def set_branding(db: Database, account_id: uuid.UUID, changes: dict, *, dry_run: bool = False) -> Account:
    """Merge `changes` into the account's branding (JSON Merge Patch: a null removes a setting).
    `dry_run` answers what the account would become without storing it."""
    async with db.transaction() as s:
        account = (await s.execute(select(Account).where(Account.id == account_id).with_for_update())).scalar_one()
        branding = dict(account.branding or {})
        for field, value in changes.items():
            if value is None:
                branding.pop(field, None)
            else:
                branding[field] = value
        if dry_run:
            s.expunge(account)
            account.branding = branding
            account.updated_at = clock.now()
            return account
        account.branding = branding or None
        account.updated_at = clock.now()
    return account


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


# --- the CLI's view of keys (no request, no principal: the operator of the deployment) -----------


async def every_key(
    db: Database, account_name: str | None = None, *, include_revoked: bool = False
) -> list[tuple[ApiKey, Account]]:
    """Every key of the deployment with its account, oldest first (`bctrl-server keys list`)."""
    stmt = select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id).order_by(ApiKey.id)
    if account_name is not None:
        stmt = stmt.where(Account.name == account_name)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    async with db.read() as s:
        return [(key, account) for key, account in (await s.execute(stmt)).all()]


async def revoke_by_operator(db: Database, key_ref: str) -> ApiKey:
    """`bctrl-server keys revoke`: a key by id or by its shown prefix (one key only). The bootstrap
    key is retired by changing BCTRL_API_KEY, which would otherwise bring it back at the next start."""
    parsed = ids.parse_uuid(key_ref)
    async with db.read() as s:
        if parsed is not None:
            matches = [k for k in [await s.get(ApiKey, parsed)] if k is not None]
        else:
            matches = list(
                (await s.execute(select(ApiKey).where(ApiKey.prefix == key_ref, ApiKey.revoked_at.is_(None)))).scalars()
            )
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} keys have the prefix {key_ref!r}: name one by id", code="api_key.ambiguous")
    if not matches or matches[0].revoked_at is not None:
        raise key_not_found(key_ref)
    key = matches[0]
    if is_bootstrap(key):
        raise DomainError(
            "The bootstrap key comes from BCTRL_API_KEY: change or unset the variable to retire it",
            code="auth.forbidden",
            status=403,
        )
    async with db.transaction() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == key.id).with_for_update())).scalar_one()
        if row.revoked_at is not None:
            raise key_not_found(key_ref)
        row.revoked_at = row.updated_at = clock.now()
    usage.forget(key.id)
    return row

"""Subaccounts: child accounts of a top-level account, each its own tenant (spaces, keys, quotas, usage).

Every resource row names its account, so a subaccount is an `accounts` row with a `parent_id`, and a
request acting in it (its own key, or the parent's key with BCTRL-Subaccount-Id) is a principal of
that account: every lookup by id stays the same one-account query. These functions take the Database
alone (like the rest of the accounts package) and know nothing of browsers: stopping a subaccount's
browsers when it is archived is done by the route."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from app.accounts.models import Account, AccountStatus
from app.accounts.service import subaccount_not_found
from app.core import clock, ids
from app.core.db import Database
from app.core.errors import Conflict
from app.core.paging import PageParams, fetch_by_id


@dataclass(frozen=True)
class SubaccountSpec:
    name: str
    external_id: str | None = None
    limits: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def _conflict(why: str, **details: Any) -> Conflict:
    return Conflict(why, code="subaccount.conflict", details=details)


async def _check_unique(s, parent_id: uuid.UUID, name: str | None, external_id: str | None, but: uuid.UUID | None):
    """A name (which paths accept in place of the id) and an externalId name one active subaccount."""
    live = [Account.parent_id == parent_id, Account.status == AccountStatus.ACTIVE]
    if but is not None:
        live.append(Account.id != but)
    if name is not None:
        taken = await s.scalar(select(Account.id).where(*live, Account.name == name).limit(1))
        if taken is not None:
            raise _conflict(f"A subaccount named {name!r} exists already", name=name, subaccountId=str(taken))
    if external_id is not None:
        taken = await s.scalar(select(Account.id).where(*live, Account.external_id == external_id).limit(1))
        if taken is not None:
            raise _conflict(
                f"A subaccount with externalId {external_id!r} exists already",
                externalId=external_id,
                subaccountId=str(taken),
            )


def merged_limits(current: dict[str, Any] | None, changes: dict[str, Any]) -> dict[str, Any] | None:
    """JSON Merge Patch of the limits: a null removes a limit (the deployment's default applies)."""
    limits = dict(current or {})
    for field, value in changes.items():
        if value is None:
            limits.pop(field, None)
        else:
            limits[field] = value
    return limits or None


async def create(db: Database, parent_id: uuid.UUID, spec: SubaccountSpec) -> Account:
    now = clock.now()
    account = Account(
        id=ids.new_id(),
        name=spec.name,
        created_at=now,
        updated_at=now,
        parent_id=parent_id,
        status=AccountStatus.ACTIVE,
        external_id=spec.external_id,
        limits=merged_limits(None, spec.limits or {}),
        metadata_=spec.metadata,
    )
    async with db.transaction() as s:
        parent = (await s.execute(select(Account).where(Account.id == parent_id).with_for_update())).scalar_one()
        if parent.parent_id is not None:  # checked by the route too; one level only
            raise _conflict("A subaccount cannot have subaccounts", subaccountId=str(parent_id))
        await _check_unique(s, parent_id, spec.name, spec.external_id, None)
        s.add(account)
    return account


async def find(db: Database, parent_id: uuid.UUID, id_or_name: str) -> Account:
    """A subaccount of `parent_id` by id, else by name (the active one first); anything else is 404."""
    parsed = ids.parse_uuid(id_or_name)
    async with db.read() as s:
        row = await s.get(Account, parsed) if parsed else None
        if row is None or row.parent_id != parent_id:
            row = (
                await s.execute(
                    select(Account)
                    .where(Account.parent_id == parent_id, Account.name == id_or_name)
                    .order_by((Account.status == AccountStatus.ACTIVE).desc(), Account.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
    if row is None:
        raise subaccount_not_found(id_or_name)
    return row


async def list_subaccounts(
    db: Database,
    parent_id: uuid.UUID,
    page: PageParams,
    *,
    status: str | None = None,
    external_id: str | None = None,
    q: str | None = None,
    newest_first: bool = True,
) -> tuple[list[Account], str | None]:
    stmt = select(Account).where(Account.parent_id == parent_id)
    if status is not None:
        stmt = stmt.where(Account.status == status)
    if external_id is not None:
        stmt = stmt.where(Account.external_id == external_id)
    if q:
        # A case-insensitive substring of the name or the externalId; LIKE's wildcards are literal here.
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                func.lower(Account.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Account.external_id, "")).like(pattern, escape="\\"),
            )
        )
    return await fetch_by_id(db, stmt, Account.id, page, newest_first=newest_first)


async def update(db: Database, sub: Account, changes: dict[str, Any]) -> Account:
    """`changes` holds the fields the request set: `name`, `externalId` (null clears it), `metadata`
    (replaced; null clears it), `limits` (merged, a null removes one). An archived subaccount is 409."""
    async with db.transaction() as s:
        row = (await s.execute(select(Account).where(Account.id == sub.id).with_for_update())).scalar_one()
        if row.status == AccountStatus.ARCHIVED:
            raise Conflict(
                "The subaccount is archived and cannot be changed",
                code="subaccount.archived",
                details={"subaccountId": str(row.id)},
            )
        await _check_unique(
            s,
            row.parent_id,
            changes.get("name"),
            changes.get("externalId") if "externalId" in changes else None,
            row.id,
        )
        if changes.get("name") is not None:
            row.name = changes["name"]
        if "externalId" in changes:
            row.external_id = changes["externalId"]
        if "metadata" in changes:
            row.metadata_ = changes["metadata"]
        if "limits" in changes:
            row.limits = None if changes["limits"] is None else merged_limits(row.limits, changes["limits"])
        row.updated_at = clock.now()
    return row


async def archive(db: Database, sub: Account) -> tuple[Account, bool]:
    """Archive: its keys stop authenticating at once, its parent may read its records but start
    nothing in it. Returns the row and whether this call archived it (a repeat changes nothing)."""
    async with db.transaction() as s:
        row = (await s.execute(select(Account).where(Account.id == sub.id).with_for_update())).scalar_one()
        if row.status == AccountStatus.ARCHIVED:
            return row, False
        row.status, row.archived_at = AccountStatus.ARCHIVED, clock.now()
        row.updated_at = row.archived_at
    return row, True

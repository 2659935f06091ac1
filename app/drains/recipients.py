"""Notification recipients: where a person would be told that a task waits for their input.

This server sends no email, SMS or WhatsApp message (it has no such gateway): recipients are kept,
checked and listed, so an operator's relay (subscribed to `tool_call.awaiting_input` /
`task.awaiting_input` through a webhook or a drain) knows whom to tell. An email is checked for its
form, a phone number (sms, whatsapp) must be E.164 (`+` and 7 to 15 digits; spaces, dots, dashes and
parentheses are dropped). The same type and value twice in an account is 409."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.drains.models import NotificationRecipient

_EMAIL = re.compile(r"^[^@\s\"<>,;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_NOISE = re.compile(r"[\s().-]")


def not_found(ref: object) -> NotFound:
    return NotFound(
        "Notification recipient not found",
        code="notification_recipient.not_found",
        details={"recipientId": str(ref)[:100]},
    )


def _invalid(code: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        message, code=code, details={"fields": [{"field": "value", "in": "body", "message": message, "type": code}]}
    )


def checked_value(kind: str, value: str | None) -> str:
    """The value as stored (a phone number without its separators, an email's domain in lower case)."""
    value = (value or "").strip()
    if not value:
        raise _invalid("notification_recipient.value_required", "value: an email address or a phone number")
    if kind == "email":
        if len(value) > 254 or not _EMAIL.fullmatch(value):
            raise _invalid("notification_recipient.invalid_email", "value: an email address such as ops@example.com")
        local, _, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}"
    phone = _PHONE_NOISE.sub("", value)
    if not _PHONE.fullmatch(phone):
        raise _invalid("notification_recipient.invalid_phone", "value: a phone number in E.164 form, e.g. +14155550123")
    return phone


def _duplicate(kind: str, value: str) -> Conflict:
    return Conflict(
        f"A {kind} recipient with this value exists already",
        code="notification_recipient.duplicate",
        details={"type": kind},
    )


async def _taken(s, account_id: uuid.UUID, kind: str, value: str, other: uuid.UUID | None = None) -> bool:
    stmt = select(NotificationRecipient.id).where(
        NotificationRecipient.account_id == account_id,
        NotificationRecipient.type == kind,
        NotificationRecipient.value == value,
    )
    if other is not None:
        stmt = stmt.where(NotificationRecipient.id != other)
    return (await s.execute(stmt.limit(1))).first() is not None


@dataclass(frozen=True)
class RecipientSpec:
    type: str
    value: str
    name: str | None = None


async def create(ctx: AppContext, p: Principal, spec: RecipientSpec) -> NotificationRecipient:
    value = checked_value(spec.type, spec.value)
    now = clock.now()
    row = NotificationRecipient(
        id=ids.new_id(),
        account_id=p.account_id,
        type=spec.type,
        value=value,
        name=spec.name,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            if await _taken(s, p.account_id, spec.type, value):
                raise _duplicate(spec.type, value)
            s.add(row)
    except IntegrityError:  # the same value created at the same moment
        raise _duplicate(spec.type, value) from None
    return row


async def get(ctx: AppContext, p: Principal, recipient_id: str) -> NotificationRecipient:
    row = await get_owned(ctx.db, NotificationRecipient, recipient_id, p.account_id)
    if row is None:
        raise not_found(recipient_id)
    return row


async def list_recipients(
    ctx: AppContext,
    account_id: uuid.UUID,
    page: PageParams,
    *,
    newest_first: bool,
    kind: str | None = None,
    enabled: bool | None = None,
):
    stmt = select(NotificationRecipient).where(NotificationRecipient.account_id == account_id)
    if kind is not None:
        stmt = stmt.where(NotificationRecipient.type == kind)
    if enabled is not None:
        stmt = stmt.where(NotificationRecipient.enabled == enabled)
    return await fetch_by_id(ctx.db, stmt, NotificationRecipient.id, page, newest_first=newest_first)


async def update(ctx: AppContext, row: NotificationRecipient, changes: dict[str, Any]) -> NotificationRecipient:
    value = checked_value(row.type, changes["value"]) if "value" in changes else None
    try:
        async with ctx.db.transaction() as s:
            if value is not None and await _taken(s, row.account_id, row.type, value, other=row.id):
                raise _duplicate(row.type, value)
            found = await s.get(NotificationRecipient, row.id)
            if found is None:  # deleted meanwhile
                raise not_found(row.id)
            row = found
            if value is not None:
                row.value = value
            if "name" in changes:
                row.name = changes["name"]
            if changes.get("enabled") is not None:
                row.enabled = changes["enabled"]
            row.updated_at = clock.now()
    except IntegrityError:
        raise _duplicate(row.type, value or row.value) from None
    return row


async def delete(ctx: AppContext, row: NotificationRecipient) -> uuid.UUID:
    async with ctx.db.transaction() as s:
        target = await s.get(NotificationRecipient, row.id)
        if target is not None:
            await s.delete(target)
    return row.id

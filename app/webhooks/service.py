"""Webhook endpoints of an account, their deliveries, and the operations on them (test, redeliver).

`events` names event types as `/v1/events` shows them (`runtime.started`, `task.succeeded`, ...), a
whole family (`task.*`) or everything (`*`). The URL is checked when it is set (http(s) only; an address
the egress mode refuses is 400) and again at every delivery (a name may resolve elsewhere later)."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy import select, update

from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.webhooks import destinations, signing
from app.webhooks.models import ACTIVE, Webhook, WebhookDelivery

TEST_EVENT = "webhook.test"
ROTATION_OVERLAP = timedelta(hours=24)
MAX_EVENTS = 100
# `*`, `family.*`, or a type (`runtime.started`): lower-case words joined by dots.
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    events: list[str]
    name: str | None = None


def not_found() -> NotFound:
    return NotFound("No such webhook", code="webhook.not_found")


def _invalid(field: str, message: str, code: str) -> InvalidRequest:
    return InvalidRequest(
        message, code=code, details={"fields": [{"field": field, "in": "body", "message": message, "type": code}]}
    )


def check_events(events: list[str]) -> list[str]:
    if not events:
        raise _invalid("events", "events names at least one event type, or *", "webhook.events_invalid")
    if len(events) > MAX_EVENTS:
        raise _invalid("events", f"at most {MAX_EVENTS} event types", "webhook.events_invalid")
    for event in events:
        if not isinstance(event, str) or len(event) > 64 or not EVENT_PATTERN.match(event):
            raise _invalid(
                "events", f"{event!r} is not an event type, a family (task.*) or *", "webhook.events_invalid"
            )
    return list(dict.fromkeys(events))


async def check_url(ctx: AppContext, url: str) -> str:
    """400 `webhook.url_invalid` for a URL that is not http(s), `webhook.url_not_allowed` for one whose
    host resolves to an address the egress mode refuses. A name that does not resolve yet is accepted
    (each delivery resolves it again)."""
    try:
        destinations.check_url(url)
    except destinations.Refused as exc:
        raise _invalid("url", f"The webhook URL is not allowed: {exc}", "webhook.url_invalid") from None
    try:
        await asyncio.to_thread(destinations.addresses, ctx, url)
    except destinations.Unresolved:
        pass
    except destinations.Refused as exc:
        raise _invalid("url", f"The webhook URL is not allowed: {exc}", "webhook.url_not_allowed") from None
    return url


def matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


async def create(ctx: AppContext, account_id: uuid.UUID, spec: WebhookSpec) -> tuple[Webhook, str]:
    """The webhook and its signing secret (shown once: only its sealed form is kept)."""
    url = await check_url(ctx, spec.url)
    now = clock.now()
    webhook_id = ids.new_id()
    secret = signing.new_secret()
    row = Webhook(
        id=webhook_id,
        account_id=account_id,
        name=spec.name,
        url=url,
        events=check_events(spec.events),
        enabled=True,
        secret_sealed=signing.seal(ctx, webhook_id, signing.CURRENT, secret),
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(row)
    return row, secret


async def get(ctx: AppContext, account_id: uuid.UUID, raw_id: str) -> Webhook:
    row = await get_owned(ctx.db, Webhook, raw_id, account_id)
    if row is None or row.deleted_at is not None:
        raise not_found()
    return row


async def list_webhooks(
    ctx: AppContext, account_id: uuid.UUID, page: PageParams, *, newest_first: bool
) -> tuple[list[Webhook], str | None]:
    stmt = select(Webhook).where(Webhook.account_id == account_id, Webhook.deleted_at.is_(None))
    return await fetch_by_id(ctx.db, stmt, Webhook.id, page, newest_first=newest_first)


async def _cancel_pending(s, webhook_id: uuid.UUID, why: str) -> None:
    await s.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "pending")
        .values(status="cancelled", last_error=why, next_attempt_at=None, updated_at=clock.now())
    )


async def update_webhook(ctx: AppContext, webhook: Webhook, changes: dict) -> Webhook:
    """Change url, events, name, enabled. Disabling cancels the pending deliveries (a delivery being
    sent finishes); a disabled webhook gets no new ones."""
    if "url" in changes:
        changes["url"] = await check_url(ctx, changes["url"])
    if "events" in changes:
        changes["events"] = check_events(changes["events"])
    async with ctx.db.transaction() as s:
        row = await s.get(Webhook, webhook.id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise not_found()
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = clock.now()
        if changes.get("enabled") is False:
            await _cancel_pending(s, row.id, "the webhook was disabled")
    return row


async def delete(ctx: AppContext, webhook: Webhook) -> Webhook:
    """Marks it deleted (its delivery records stay) and cancels its pending deliveries."""
    async with ctx.db.transaction() as s:
        row = await s.get(Webhook, webhook.id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise not_found()
        row.deleted_at = row.updated_at = clock.now()
        row.enabled = False
        row.previous_secret_sealed = None
        await _cancel_pending(s, row.id, "the webhook was deleted")
    return row


async def rotate_secret(ctx: AppContext, webhook: Webhook) -> str:
    """A new secret (shown once); the previous one also signs for ROTATION_OVERLAP."""
    secret = signing.new_secret()
    async with ctx.db.transaction() as s:
        row = await s.get(Webhook, webhook.id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise not_found()
        previous = signing.unseal(ctx, row.id, signing.CURRENT, row.secret_sealed)
        now = clock.now()
        row.previous_secret_sealed = signing.seal(ctx, row.id, signing.PREVIOUS, previous) if previous else None
        row.previous_secret_until = now + ROTATION_OVERLAP if previous else None
        row.secret_sealed = signing.seal(ctx, row.id, signing.CURRENT, secret)
        row.updated_at = now
    return secret


def current_secret(ctx: AppContext, webhook: Webhook) -> str | None:
    """The current secret opened (a replay of the create or rotation that showed it), None if unreadable."""
    return signing.unseal(ctx, webhook.id, signing.CURRENT, webhook.secret_sealed)


def body_of(event_id: uuid.UUID | str, event_type: str, when: str, data: dict) -> str:
    """What a delivery sends (the Standard Webhooks payload shape: type, timestamp, data)."""
    return orjson.dumps({"id": str(event_id), "type": event_type, "timestamp": when, "data": data}).decode()


def new_delivery(webhook: Webhook, event_id: uuid.UUID, event_type: str, body: str) -> WebhookDelivery:
    now = clock.now()
    return WebhookDelivery(
        id=ids.new_id(),
        webhook_id=webhook.id,
        account_id=webhook.account_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status="pending",
        attempt_count=0,
        round_attempts=0,
        next_attempt_at=now,
        queued_at=now,
        created_at=now,
        updated_at=now,
    )


async def test(ctx: AppContext, webhook: Webhook) -> WebhookDelivery:
    """Queue a synthetic `webhook.test` event for the webhook (after what it already has pending)."""
    event_id = ids.new_id()
    when = clock.iso(clock.now())
    data = {"webhookId": str(webhook.id), "message": "A test event sent by POST /v1/webhooks/{id}/test"}
    row = new_delivery(webhook, event_id, TEST_EVENT, body_of(event_id, TEST_EVENT, when, data))
    async with ctx.db.transaction() as s:
        current = await s.get(Webhook, webhook.id)
        if current is None or current.deleted_at is not None:
            raise not_found()
        s.add(row)
    return row


async def list_deliveries(
    ctx: AppContext, webhook: Webhook, page: PageParams, *, newest_first: bool
) -> tuple[list[WebhookDelivery], str | None]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    return await fetch_by_id(ctx.db, stmt, WebhookDelivery.id, page, newest_first=newest_first)


async def get_delivery(ctx: AppContext, webhook: Webhook, raw_id: str) -> WebhookDelivery:
    delivery_id = ids.parse_uuid(raw_id)
    async with ctx.db.read() as s:
        row = await s.get(WebhookDelivery, delivery_id) if delivery_id is not None else None
    if row is None or row.webhook_id != webhook.id:
        raise NotFound("No such delivery of this webhook", code="webhook_delivery.not_found")
    return row


async def redeliver(ctx: AppContext, webhook: Webhook, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue the delivery again (same id, same body: receivers dedupe on `webhook-id`). One being sent
    right now is left as it is (its attempt is under way); a new attempt is added to its count."""
    async with ctx.db.transaction() as s:
        row = await s.get(WebhookDelivery, delivery.id, with_for_update=True)
        current = await s.get(Webhook, webhook.id)
        if row is None or current is None or current.deleted_at is not None:
            raise not_found()
        if row.status not in ACTIVE:
            now = clock.now()
            row.status = "pending"
            row.next_attempt_at = now
            row.lease_until = None
            row.claim = None
            # A fresh round of attempts for the give-up rule (age and count); attemptCount keeps counting.
            row.queued_at = now
            row.round_attempts = 0
            row.updated_at = now
    return row

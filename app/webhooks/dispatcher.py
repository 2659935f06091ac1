"""The webhook dispatcher, in every server process: fans events out of the outbox into deliveries, and
sends the deliveries that are due.

Fan-out: one process at a time (the cursor row `webhook_dispatch` is taken `FOR UPDATE SKIP LOCKED`; the
others skip the round) reads the outbox in commit-safe order, adds a delivery per matching webhook and
moves the cursor, in one transaction: every event is fanned out exactly once.

Sending: a process claims due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and marks them
`sending` with a lease longer than one attempt can take, so no other process sends the same one while
it is under way; a process that dies mid-attempt leaves a lease that expires, and the next claim (here or
in another process) sends it again with the same `webhook-id`. Only the oldest unfinished delivery of a
webhook is ever due, so a webhook gets its events in order (one that failed for good lets the next go).
Failed attempts are retried with exponential backoff and jitter, until `webhook_max_attempts` or
`webhook_max_age_seconds` (then `failed`; `redeliver` queues it again)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from app.core import background, clock
from app.core.context import AppContext
from app.outbox import service as outbox
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent
from app.webhooks import destinations, service, signing
from app.webhooks.models import ACTIVE, Webhook, WebhookDelivery, WebhookDispatch

log = structlog.get_logger(__name__)

FAN_OUT_PAGE = 500
CLAIM_BATCH = 32
# Attempts under way at once in one process (each to a different webhook).
MAX_IN_FLIGHT = 64
LEASE_GRACE = timedelta(seconds=5)
# Woken by new events at most this often (an event stream can be thousands a second).
MIN_GAP_SECONDS = 0.05
ERROR_LENGTH = 300
RESPONSE_LIMIT = 64 * 1024

# (event, space id, runtime id) -> the event as the API shows it (given by the assembly: the dispatcher
# knows no API generation).
Render = Callable[[RunEvent, Any, Any], dict[str, Any]]


async def lowest_cursor(ctx: AppContext) -> outbox.Cursor | None:
    async with ctx.db.read() as s:
        row = await s.get(WebhookDispatch, 1)
    return outbox.Cursor(row.cursor_xact, row.cursor_position) if row else None


outbox.register_consumer("webhooks", lowest_cursor)


class Dispatcher:
    def __init__(self, ctx: AppContext, render: Render) -> None:
        self.ctx = ctx
        self.render = render
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._sending: set[asyncio.Task] = set()
        self._woken = None
        self._policy = None
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.ctx.settings.webhook_timeout_seconds, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        # Cancelled until done: a cancellation lost in a wait (Python 3.11) must not hang shutdown (seen in CI).
        await background.stop(self._task)
        # Attempts under way are dropped: their leases run out and any process sends them again.
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def prune_outbox(self) -> None:
        """An upkeep job: the outbox rows every consumer has passed go."""
        await outbox.prune(self.ctx)

    async def _run(self) -> None:
        poll = self.ctx.settings.webhook_poll_seconds
        with self.ctx.notifier.subscribe_all() as woken:
            self._woken = woken
            while True:
                started = time.monotonic()
                claimed = 0
                try:
                    while await self.fan_out() >= FAN_OUT_PAGE:
                        pass
                    claimed = await self.deliver_due()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook_dispatch_failed")
                if claimed:
                    await asyncio.sleep(0)  # more may be due at once (the next of each webhook)
                    continue
                # Woken by new events (of any process, through the notifier) or an attempt that ended.
                await woken.wait(poll)
                await asyncio.sleep(max(0.0, MIN_GAP_SECONDS - (time.monotonic() - started)))

    # --- fan-out ---------------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """One page of the outbox into deliveries; the number of outbox rows read."""
        async with self.ctx.db.transaction() as s:
            cursor_row = (
                await s.execute(
                    select(WebhookDispatch).where(WebhookDispatch.id == 1).with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if cursor_row is None:  # another process is fanning out
                return 0
            after = outbox.Cursor(cursor_row.cursor_xact, cursor_row.cursor_position)
            page = await outbox.read_in(s, after, FAN_OUT_PAGE)
            if page.cursor == after:
                return 0
            if page.items:
                s.add_all(await self._deliveries(s, page.items))
            cursor_row.cursor_xact, cursor_row.cursor_position = page.cursor.xact, page.cursor.position
            cursor_row.updated_at = clock.now()
        return len(page.items)

    async def _deliveries(self, s, items: list[outbox.OutboxItem]) -> list[WebhookDelivery]:
        accounts = {item.account_id for item in items}
        hooks = (
            await s.execute(
                select(Webhook).where(
                    Webhook.account_id.in_(accounts), Webhook.enabled.is_(True), Webhook.deleted_at.is_(None)
                )
            )
        ).scalars()
        by_account: dict[uuid.UUID, list[Webhook]] = {}
        for hook in hooks:
            by_account.setdefault(hook.account_id, []).append(hook)
        wanted = [
            (item, hook)
            for item in items
            for hook in by_account.get(item.account_id, ())
            # A webhook gets the events of its lifetime only (the fan-out may run a little behind).
            if item.event.time >= hook.created_at and service.matches(hook.events, item.event.type)
        ]
        if not wanted:
            return []
        places = await self._places(s, {item.event for item, _ in wanted})
        bodies: dict[uuid.UUID, str] = {}
        rows = []
        for item, hook in wanted:
            event = item.event
            if event.id not in bodies:
                space_id, runtime_id = places.get(event.id, (None, None))
                data = self.render(event, space_id, runtime_id)
                bodies[event.id] = service.body_of(event.id, event.type, data.get("time") or "", data)
            rows.append(service.new_delivery(hook, event.id, event.type, bodies[event.id]))
        return rows

    async def _places(self, s, events: set[RunEvent]) -> dict[uuid.UUID, tuple[Any, Any]]:
        """Each event's space and runtime (a task's run-less event: its task's space)."""
        run_ids = {e.run_id for e in events if e.run_id is not None}
        task_ids = {e.task_id for e in events if e.run_id is None and e.task_id is not None}
        runs = {}
        if run_ids:
            found = await s.execute(select(Run.id, Run.space_id, Run.runtime_id).where(Run.id.in_(run_ids)))
            runs = {r.id: (r.space_id, r.runtime_id) for r in found}
        tasks = {}
        if task_ids:
            found = await s.execute(select(Command.id, Command.space_id).where(Command.id.in_(task_ids)))
            tasks = {r.id: (r.space_id, None) for r in found}
        return {e.id: runs.get(e.run_id) or tasks.get(e.task_id) or (None, None) for e in events}

    # --- sending ---------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim what is due (up to the free sending slots) and start sending it; the number claimed.
        Attempts run on their own: a slow receiver holds only its own webhook back."""
        free = MAX_IN_FLIGHT - len(self._sending)
        if free <= 0:
            return 0
        claimed = await self._claim(free)
        for delivery, hook, claim in claimed:
            task = asyncio.create_task(self._attempt(delivery, hook, claim))
            self._sending.add(task)
            task.add_done_callback(self._attempt_done)
        return len(claimed)

    def _attempt_done(self, task: asyncio.Task) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook_attempt_failed", error=type(task.exception()).__name__)
        if self._woken is not None:
            self._woken.event.set()  # the webhook's next delivery may be due now

    def _due(self, now, limit: int):
        """Due deliveries that are the oldest unfinished one of their webhook: in order, one at a time."""
        earlier = aliased(WebhookDelivery)
        return (
            select(WebhookDelivery)
            .where(
                or_(
                    and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
                    and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
                ),
                ~exists().where(
                    earlier.webhook_id == WebhookDelivery.webhook_id,
                    earlier.status.in_(ACTIVE),
                    earlier.id < WebhookDelivery.id,
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )

    async def _next_of(self, s, webhook_id: uuid.UUID, now) -> list[WebhookDelivery]:
        """The webhook's oldest unfinished delivery if it is due (one index probe, whatever the backlog)."""
        head = (
            await s.execute(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status.in_(ACTIVE))
                .order_by(WebhookDelivery.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        due = head is not None and head.status == "pending" and head.next_attempt_at <= now
        return [head] if due else []

    def _take(self, rows, hooks: dict, now) -> list[tuple[WebhookDelivery, Webhook, uuid.UUID]]:
        """Mark the rows sent by this process (a new claim, a lease), or cancelled if their webhook is gone."""
        lease = now + timedelta(seconds=self.ctx.settings.webhook_timeout_seconds) + LEASE_GRACE
        claimed = []
        for row in rows:
            hook = hooks[row.webhook_id]
            if hook.deleted_at is not None or (not hook.enabled and row.event_type != service.TEST_EVENT):
                row.status, row.next_attempt_at, row.updated_at = "cancelled", None, now
                row.last_error = "the webhook was deleted" if hook.deleted_at else "the webhook was disabled"
                continue
            claim = uuid.uuid4()
            row.status, row.claim, row.lease_until = "sending", claim, lease
            row.attempt_count += 1
            row.round_attempts += 1
            row.updated_at = now
            claimed.append((row, hook, claim))
        return claimed

    async def _claim(self, limit: int) -> list[tuple[WebhookDelivery, Webhook, uuid.UUID]]:
        now = clock.now()
        async with self.ctx.db.transaction() as s:
            rows = list((await s.execute(self._due(now, min(limit, CLAIM_BATCH)))).scalars())
            if not rows:
                return []
            found = await s.execute(select(Webhook).where(Webhook.id.in_({r.webhook_id for r in rows})))
            return self._take(rows, {h.id: h for h in found.scalars()}, now)

    def _outcome(self, delivery: WebhookDelivery, status: int | None, error: str | None) -> dict[str, Any]:
        settings = self.ctx.settings
        now = clock.now()
        values: dict[str, Any] = {"response_status": status, "updated_at": now, "lease_until": None, "claim": None}
        if status is not None and 200 <= status < 300:
            values.update(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
            self.sent += 1
            return values
        values["last_error"] = (error or f"the receiver answered HTTP {status}")[:ERROR_LENGTH]
        age = (now - delivery.queued_at).total_seconds()
        if delivery.round_attempts >= settings.webhook_max_attempts or age >= settings.webhook_max_age_seconds:
            values.update(status="failed", next_attempt_at=None)
            self.failed += 1
            return values
        wait = min(
            settings.webhook_retry_max_seconds, settings.webhook_retry_base_seconds * 2 ** (delivery.round_attempts - 1)
        )
        values.update(status="pending", next_attempt_at=now + timedelta(seconds=wait * random.uniform(0.5, 1.0)))
        return values

    async def _attempt(self, delivery: WebhookDelivery, hook: Webhook, claim: uuid.UUID) -> None:
        """Send, record the outcome, and while the webhook's deliveries succeed, claim its next one in the
        same transaction (one round trip to the database per delivery of a busy webhook)."""
        while True:
            status, error = await self._send(delivery, hook)
            values = self._outcome(delivery, status, error)
            following: list = []
            async with self.ctx.db.transaction() as s:
                # Only if still ours: a lease that ran out may have been claimed again meanwhile.
                done = await s.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery.id, WebhookDelivery.claim == claim)
                    .values(**values)
                )
                if values["status"] == "sent" and done.rowcount == 1:
                    rows = await self._next_of(s, hook.id, values["updated_at"])
                    if rows:
                        fresh = await s.get(Webhook, hook.id, populate_existing=True)
                        following = self._take(rows, {hook.id: fresh}, values["updated_at"])
            log.info(
                "webhook_attempt",
                webhook_id=str(hook.id),
                delivery_id=str(delivery.id),
                attempt=delivery.attempt_count,
                response_status=status,
                outcome=values["status"],
            )
            if not following:
                return
            delivery, hook, claim = following[0]

    def _keys(self, hook: Webhook) -> list[str]:
        keys = [signing.unseal(self.ctx, hook.id, signing.CURRENT, hook.secret_sealed)]
        if hook.previous_secret_until is not None and hook.previous_secret_until > clock.now():
            keys.append(signing.unseal(self.ctx, hook.id, signing.PREVIOUS, hook.previous_secret_sealed))
        return [k for k in keys if k]

    async def _send(self, delivery: WebhookDelivery, hook: Webhook) -> tuple[int | None, str | None]:
        """(HTTP status, None) or (None, why it could not be sent). Never raises for the receiver's faults."""
        keys = self._keys(hook)
        if not keys:
            return None, "the webhook's secret cannot be opened (the server key changed): rotate the secret"
        try:
            if self._policy is None:  # built once: it resolves the control plane's own endpoints
                self._policy = await asyncio.to_thread(destinations.policy_for, self.ctx)
            addresses = await asyncio.to_thread(destinations.addresses, self.ctx, hook.url, self._policy)
        except destinations.Refused as exc:
            return None, f"not sent: {exc}"
        body = delivery.body.encode()
        headers = {
            **signing.headers(keys, str(delivery.id), clock.now(), body),
            "content-type": "application/json",
            "user-agent": "bctrl-webhooks/1",
        }
        target = httpx.URL(hook.url)
        headers["host"] = target.netloc.decode("ascii")
        extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
        assert self._client is not None
        last_error = None
        for address in addresses:
            try:
                async with self._client.stream(
                    "POST", target.copy_with(host=address), content=body, headers=headers, extensions=extensions
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():  # drained, not kept
                        read += len(chunk)
                        if read > RESPONSE_LIMIT:
                            break
                    return response.status_code, None
            except httpx.ConnectError as exc:
                last_error = f"could not connect: {type(exc).__name__}"
            except httpx.TimeoutException:
                return None, "the receiver did not answer in time"
            except httpx.HTTPError as exc:
                return None, f"the request failed: {type(exc).__name__}"
        return None, last_error

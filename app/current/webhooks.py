"""`/v1/webhooks` (current generation): endpoints that receive the account's events, signed per Standard
Webhooks, their deliveries, `test` and `redeliver`.

The signing secret is shown by create and rotate-secret only. A retry of either with the same
Idempotency-Key gets the stored answer with the webhook's current secret opened again (the stored answer
never holds it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.context import AppContext
from app.core.errors import Conflict
from app.core.idempotency import Idempotency, fingerprint, respond
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.event_shapes import event_dict
from app.current.schemas import Order
from app.current.webhook_schemas import (
    WebhookCreate,
    WebhookCreatedOut,
    WebhookDeletedOut,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookOut,
    WebhookPage,
    WebhookSecretOut,
    WebhookUpdate,
)
from app.webhooks import service
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.models import Webhook, WebhookDelivery

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
routers = (router,)


def dispatcher_for(ctx: AppContext) -> Dispatcher:
    """The process's webhook dispatcher, sending events in this generation's words (`Event`)."""
    return Dispatcher(ctx, render=event_dict)


Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="Order by createdAt and ID. Defaults to desc.")]


async def path_webhook(ctx: CtxDep, p: PrincipalDep, webhook_id: str) -> Webhook:
    return await service.get(ctx, p.account_id, webhook_id)


PathWebhook = Annotated[Webhook, Depends(path_webhook)]


async def path_delivery(ctx: CtxDep, webhook: PathWebhook, delivery_id: str) -> WebhookDelivery:
    return await service.get_delivery(ctx, webhook, delivery_id)


PathDelivery = Annotated[WebhookDelivery, Depends(path_delivery)]


def _secret_of(ctx: AppContext, webhook: Webhook) -> str:
    secret = service.current_secret(ctx, webhook)
    if secret is None:
        raise Conflict(
            "The webhook's secret cannot be opened (the server key changed): rotate it",
            code="webhook.secret_unreadable",
        )
    return secret


async def _once_with_secret(
    ctx: AppContext,
    idem: Idempotency,
    response: Response,
    body: Any,
    make: Callable[[], Awaitable[WebhookCreatedOut | WebhookSecretOut]],
    replay: Callable[[Webhook, str], WebhookCreatedOut | WebhookSecretOut],
):
    """`idem.once` for an answer carrying the secret: the stored answer leaves it out, and a replay
    opens the webhook's current secret again."""
    if idem.key is None:
        return await make()
    made = None

    async def handler() -> tuple[int, Any]:
        nonlocal made
        made = await make()
        return idem.status, made.model_dump(mode="json", exclude={"secret"})

    stored = await respond(
        ctx.db, idem.account_id, idem.key, fingerprint(idem.method, idem.path, body, idem.secret), handler
    )
    if made is not None:
        return made
    webhook = await service.get(ctx, idem.account_id, str(orjson.loads(stored.body)["id"]))
    response.headers["Idempotency-Replayed"] = "true"
    return replay(webhook, _secret_of(ctx, webhook))


@router.get("", response_model=WebhookPage, responses=errors(400, 403))
async def list_webhooks(ctx: CtxDep, p: PrincipalDep, page: Page, order: OrderQuery = "desc") -> WebhookPage:
    """The account's webhooks (never their secrets)."""
    rows, cursor = await service.list_webhooks(ctx, p.account_id, page, newest_first=order == "desc")
    return WebhookPage(data=[WebhookOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.post("", status_code=201, response_model=WebhookCreatedOut, responses=errors(400, 403, 409, 429))
async def create_webhook(
    ctx: CtxDep, p: PrincipalDep, body: WebhookCreate, idem: IdempotencyDep, response: Response
) -> WebhookCreatedOut:
    """A webhook for `events` (types, `family.*`, or `*`) at `url` (http or https; 400
    `webhook.url_invalid` otherwise, `webhook.url_not_allowed` for an address this server may not call).
    The `whsec_` secret is returned now only."""

    async def make() -> WebhookCreatedOut:
        row, secret = await service.create(
            ctx, p.account_id, service.WebhookSpec(url=body.url, events=body.events, name=body.name)
        )
        return WebhookCreatedOut(**WebhookOut.of(row).model_dump(), secret=secret)

    def replay(row: Webhook, secret: str) -> WebhookCreatedOut:
        return WebhookCreatedOut(**WebhookOut.of(row).model_dump(), secret=secret)

    return await _once_with_secret(ctx, idem, response, body.model_dump(mode="json"), make, replay)


@router.get("/{webhook_id}", response_model=WebhookOut, responses=errors(403, 404))
async def get_webhook(webhook: PathWebhook) -> WebhookOut:
    """One webhook, without its secret."""
    return WebhookOut.of(webhook)


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=errors(400, 403, 404, 409, 429))
async def update_webhook(ctx: CtxDep, webhook: PathWebhook, body: WebhookUpdate, idem: IdempotencyDep) -> WebhookOut:
    """Change the URL, the events, the name (`null` clears it) or `enabled` (disabling cancels the
    pending deliveries)."""

    async def make() -> WebhookOut:
        return WebhookOut.of(await service.update_webhook(ctx, webhook, body.changes()))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{webhook_id}", response_model=WebhookDeletedOut, responses=errors(403, 404, 409, 429))
async def delete_webhook(ctx: CtxDep, webhook: PathWebhook, idem: IdempotencyDep) -> WebhookDeletedOut:
    """Delete the webhook: its pending deliveries are cancelled; delivery records are kept."""

    async def make() -> WebhookDeletedOut:
        return WebhookDeletedOut(id=str((await service.delete(ctx, webhook)).id))

    return await idem.once(make, {})


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecretOut, responses=errors(403, 404, 409, 429))
async def rotate_secret(
    ctx: CtxDep, webhook: PathWebhook, idem: IdempotencyDep, response: Response
) -> WebhookSecretOut:
    """A new secret, returned now only; for 24 hours deliveries carry a second signature by the previous
    one, so a receiver can switch without dropping any."""

    async def make() -> WebhookSecretOut:
        return WebhookSecretOut(id=str(webhook.id), secret=await service.rotate_secret(ctx, webhook))

    def replay(row: Webhook, secret: str) -> WebhookSecretOut:
        return WebhookSecretOut(id=str(row.id), secret=secret)

    return await _once_with_secret(ctx, idem, response, {}, make, replay)


@router.post("/{webhook_id}/test", response_model=WebhookDeliveryOut, responses=errors(403, 404, 409, 429))
async def test_webhook(ctx: CtxDep, webhook: PathWebhook, idem: IdempotencyDep) -> WebhookDeliveryOut:
    """Queue a signed `webhook.test` event for the webhook (after its pending deliveries); its delivery."""

    async def make() -> WebhookDeliveryOut:
        return WebhookDeliveryOut.of(await service.test(ctx, webhook))

    return await idem.once(make, {})


@router.get("/{webhook_id}/deliveries", response_model=WebhookDeliveryPage, responses=errors(400, 403, 404))
async def list_deliveries(
    ctx: CtxDep, webhook: PathWebhook, page: Page, order: OrderQuery = "desc"
) -> WebhookDeliveryPage:
    """The webhook's deliveries: status, attempts, the last response status or error, the next attempt."""
    rows, cursor = await service.list_deliveries(ctx, webhook, page, newest_first=order == "desc")
    return WebhookDeliveryPage(
        data=[WebhookDeliveryOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDeliveryOut,
    responses=errors(403, 404, 409, 429),
)
async def redeliver(
    ctx: CtxDep, webhook: PathWebhook, delivery: PathDelivery, idem: IdempotencyDep
) -> WebhookDeliveryOut:
    """Queue the delivery for another attempt (same `webhook-id` and body, so receivers can dedupe); one
    being sent now is left to finish."""

    async def make() -> WebhookDeliveryOut:
        return WebhookDeliveryOut.of(await service.redeliver(ctx, webhook, delivery))

    return await idem.once(make, {})

"""`/v1/notification-recipients`: whom to tell when a task waits for a person's input (email, SMS,
WhatsApp). Kept, checked and listed; this server sends no messages itself (app/drains/recipients.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.drain_schemas import (
    RecipientCreate,
    RecipientDeletedOut,
    RecipientOut,
    RecipientPage,
    RecipientType,
    RecipientUpdate,
)
from app.current.schemas import Order
from app.drains import recipients
from app.drains.models import NotificationRecipient

router = APIRouter(prefix="/v1/notification-recipients", tags=["notification recipients"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]


async def path_recipient(ctx: CtxDep, p: PrincipalDep, recipient_id: str) -> NotificationRecipient:
    return await recipients.get(ctx, p, recipient_id)


PathRecipient = Annotated[NotificationRecipient, Depends(path_recipient)]


@router.get("", response_model=RecipientPage, responses=errors(400, 403))
async def list_notification_recipients(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    order: Annotated[Order, Query(description="Order by createdAt and ID. Defaults to desc.")] = "desc",
    type: Annotated[RecipientType | None, Query()] = None,
    enabled: Annotated[bool | None, Query()] = None,
) -> RecipientPage:
    """The account's notification recipients, by type and enabled state if asked."""
    rows, cursor = await recipients.list_recipients(
        ctx, p.account_id, page, newest_first=order == "desc", kind=type, enabled=enabled
    )
    return RecipientPage(
        data=[RecipientOut.of(r, p.subaccount_id) for r in rows], has_more=cursor is not None, next_cursor=cursor
    )


@router.post("", status_code=201, response_model=RecipientOut, responses=errors(400, 403, 409, 429))
async def create_notification_recipient(
    ctx: CtxDep, p: PrincipalDep, body: RecipientCreate, idem: IdempotencyDep
) -> RecipientOut:
    """A recipient: an email address, or a phone number (E.164) for SMS or WhatsApp. 400
    `notification_recipient.invalid_email` / `invalid_phone` / `value_required`; the same type and
    value twice is 409 `notification_recipient.duplicate`. This server sends no messages: the recipients
    are for an operator's relay reading them (see the decisions document)."""

    async def make() -> RecipientOut:
        spec = recipients.RecipientSpec(type=body.type, value=body.value, name=body.name)
        return RecipientOut.of(await recipients.create(ctx, p, spec), p.subaccount_id)

    return await idem.once(make, body.model_dump(mode="json"))


@router.patch("/{recipient_id}", response_model=RecipientOut, responses=errors(400, 403, 404, 409, 429))
async def update_notification_recipient(
    ctx: CtxDep, p: PrincipalDep, row: PathRecipient, body: RecipientUpdate, idem: IdempotencyDep
) -> RecipientOut:
    """Change the value (checked as at create), the name or `enabled`."""

    async def make() -> RecipientOut:
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        if changes.get("value", "") is None:
            changes["value"] = ""  # `value: null` cannot clear it: 400 value_required
        return RecipientOut.of(await recipients.update(ctx, row, changes), p.subaccount_id)

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{recipient_id}", response_model=RecipientDeletedOut, responses=errors(403, 404, 409, 429))
async def delete_notification_recipient(ctx: CtxDep, row: PathRecipient, idem: IdempotencyDep) -> RecipientDeletedOut:
    """Delete the recipient."""

    async def make() -> RecipientDeletedOut:
        return RecipientDeletedOut(id=str(await recipients.delete(ctx, row)))

    return await idem.once(make, {"recipientId": str(row.id)})

"""`/v1/webhooks` wire models (the 0.3 wheel's Webhook, WebhookCreateResponse, WebhookDeleteResponse,
WebhookRotateSecretResponse, WebhookDelivery, their lists, and the create/update bodies).

The signing secret appears only in the create and rotate-secret answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import PageOut, page_model
from app.webhooks.models import Webhook, WebhookDelivery

ResourceName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Url = Annotated[str, Field(min_length=1, max_length=2048, description="An http:// or https:// URL")]
EventName = Annotated[str, Field(min_length=1, max_length=64)]
Events = Annotated[
    list[EventName],
    Field(
        min_length=1,
        max_length=100,
        description="Event types as `/v1/events` shows them (`runtime.started`), a family (`task.*`), or `*`",
    ),
]
DeliveryStatus = Literal["pending", "sending", "sent", "failed", "cancelled"]


class WebhookCreate(RequestModel):
    url: Url
    events: Events
    name: ResourceName | None = None


class WebhookUpdate(RequestModel):
    url: Url | None = None
    events: Events | None = None
    name: ResourceName | None = None
    enabled: bool | None = None

    def changes(self) -> dict:
        """The fields sent; `null` clears only the name (the others cannot be empty)."""
        sent = {name: getattr(self, name) for name in self.model_fields_set}
        return {k: v for k, v in sent.items() if v is not None or k == "name"}


class WebhookOut(WireModel):
    id: str
    object: Literal["webhook"] = "webhook"
    name: str | None = None
    url: str
    events: list[str]
    enabled: bool
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: Webhook) -> WebhookOut:
        return cls(
            id=str(row.id),
            name=row.name,
            url=row.url,
            events=list(row.events),
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="The whsec_ signing secret, shown only now")


class WebhookDeletedOut(WireModel):
    id: str
    object: Literal["webhook"] = "webhook"
    deleted: bool = True


class WebhookSecretOut(WireModel):
    id: str
    object: Literal["webhook"] = "webhook"
    secret: str = Field(description="The new whsec_ signing secret, shown only now")


class WebhookDeliveryOut(WireModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    webhook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    response_status: int | None = None
    last_error: str | None = None
    next_attempt_at: Timestamp | None = None
    sent_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: WebhookDelivery) -> WebhookDeliveryOut:
        return cls(
            id=str(row.id),
            webhook_id=str(row.webhook_id),
            event_id=str(row.event_id),
            event_type=row.event_type,
            status=row.status,
            attempt_count=row.attempt_count,
            response_status=row.response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


WebhookPage: type[PageOut] = page_model(WebhookOut)
WebhookDeliveryPage: type[PageOut] = page_model(WebhookDeliveryOut)

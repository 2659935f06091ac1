"""`/v1/drains` and `/v1/notification-recipients` wire models (the 0.3 wheel's Drain, DrainCreateResponse,
DrainDestination(Output), DrainStatus, DrainTestResult, DrainDeleteResponse, NotificationRecipient and
their bodies). Credentials are vault references and are answered as given (never a resolved value);
literal OTLP header values are answered `[redacted]`. `subaccountId` is the subaccount the request acts
in (its rows are that subaccount's own: a subaccount is a tenant)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.event_shapes import EventCategory
from app.current.schemas import page_model
from app.drains import service
from app.drains.models import Drain, NotificationRecipient

# A drain filters by the categories events are shown in.
DrainCategory = EventCategory
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Reference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2100,
        description="A secret reference, `secret:<path>[#<field>][@<version>]`, resolved server-side when used.",
    ),
]
Categories = Annotated[
    list[DrainCategory],
    Field(min_length=1, max_length=14, description="Event categories exported; default: all of them."),
]


class HttpsDestinationIn(RequestModel):
    type: Literal["https"]
    url: Url = Field(description="Receives POSTs of NDJSON signed with the Standard Webhooks headers.")


class OtlpDestinationIn(RequestModel):
    type: Literal["otlp"]
    endpoint: Url = Field(description="OTLP/HTTP base URL: logs go to `<endpoint>/v1/logs`, spans to `/v1/traces`.")
    headers: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, description="Sent with every request; a value may be a secret reference."
    )


class S3DestinationIn(RequestModel):
    type: Literal["s3"]
    access_key_id: Reference
    secret_access_key: Reference
    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    region: Annotated[str, Field(min_length=1, max_length=32)]
    endpoint: Url | None = Field(default=None, description="Any S3-compatible endpoint; default AWS's for the region.")
    prefix: Annotated[str, Field(max_length=512)] | None = None


class R2DestinationIn(RequestModel):
    type: Literal["r2"]
    access_key_id: Reference
    secret_access_key: Reference
    account_id: Annotated[str, Field(min_length=1, max_length=64)]
    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    prefix: Annotated[str, Field(max_length=512)] | None = None


DestinationIn = Annotated[
    HttpsDestinationIn | OtlpDestinationIn | S3DestinationIn | R2DestinationIn, Field(discriminator="type")
]


class DrainCreate(RequestModel):
    destination: DestinationIn
    categories: Categories | None = None
    name: Name | None = None

    def spec(self) -> service.DrainSpec:
        return service.DrainSpec(
            destination=self.destination.model_dump(by_alias=True, exclude_none=True),
            categories=list(self.categories) if self.categories is not None else None,
            name=self.name,
        )


class DrainUpdate(RequestModel):
    categories: Categories | None = None
    destination: DestinationIn | None = None
    enabled: bool | None = None
    name: Name | None = None

    def changes(self) -> dict[str, Any]:
        found: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if self.destination is not None:
            found["destination"] = self.destination.model_dump(by_alias=True, exclude_none=True)
        return found


class HttpsDestinationOut(WireModel):
    type: Literal["https"] = "https"
    url: str


class OtlpDestinationOut(WireModel):
    type: Literal["otlp"] = "otlp"
    endpoint: str
    headers: dict[str, str]


class S3DestinationOut(WireModel):
    type: Literal["s3"] = "s3"
    access_key_id: str
    secret_access_key: str
    bucket: str
    endpoint: str | None = None
    prefix: str
    region: str


class R2DestinationOut(WireModel):
    type: Literal["r2"] = "r2"
    access_key_id: str
    secret_access_key: str
    account_id: str
    bucket: str
    prefix: str


DestinationOut = Annotated[
    HttpsDestinationOut | OtlpDestinationOut | S3DestinationOut | R2DestinationOut, Field(discriminator="type")
]


def destination_out(row: Drain) -> HttpsDestinationOut | OtlpDestinationOut | S3DestinationOut | R2DestinationOut:
    d = row.destination
    if row.kind == "https":
        return HttpsDestinationOut(url=d["url"])
    if row.kind == "otlp":
        return OtlpDestinationOut(endpoint=d["endpoint"], headers=service.shown_headers(row))
    common = {
        "access_key_id": d["accessKeyId"],
        "secret_access_key": d["secretAccessKey"],
        "bucket": d["bucket"],
        "prefix": d.get("prefix") or "",
    }
    if row.kind == "r2":
        return R2DestinationOut(account_id=d["accountId"], **common)
    return S3DestinationOut(region=d["region"], endpoint=d.get("endpoint"), **common)


class DrainStatusOut(WireModel):
    bytes_sent: int
    events_sent: int
    last_delivery_at: Timestamp | None = None
    last_error: str | None = None
    last_error_at: Timestamp | None = None
    next_attempt_at: Timestamp | None = None


class DrainOut(WireModel):
    id: str
    object: Literal["drain"] = "drain"
    name: str | None = None
    categories: list[DrainCategory]
    destination: DestinationOut
    enabled: bool
    status: DrainStatusOut
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def fields_of(cls, row: Drain, subaccount_id: uuid.UUID | None = None) -> dict[str, Any]:
        return {
            "id": str(row.id),
            "subaccount_id": str(subaccount_id) if subaccount_id else None,
            "name": row.name,
            "categories": list(row.categories),
            "destination": destination_out(row),
            "enabled": row.enabled,
            "status": DrainStatusOut(
                bytes_sent=row.bytes_sent,
                events_sent=row.events_sent,
                last_delivery_at=row.last_delivery_at,
                last_error=row.last_error,
                last_error_at=row.last_error_at,
                # When the failed batch is tried again (none while it is delivering normally).
                next_attempt_at=row.next_attempt_at if row.failures else None,
            ),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    @classmethod
    def of(cls, row: Drain, subaccount_id: uuid.UUID | None = None) -> DrainOut:
        return cls(**cls.fields_of(row, subaccount_id))


class DrainCreatedOut(DrainOut):
    secret: str | None = Field(
        default=None, description="An https drain's signing secret (`whsec_...`): in this answer only."
    )

    @classmethod
    def made(cls, row: Drain, secret: str | None, subaccount_id: uuid.UUID | None = None) -> DrainCreatedOut:
        return cls(**cls.fields_of(row, subaccount_id), secret=secret)


DrainPage = page_model(DrainOut)


class DrainDeletedOut(WireModel):
    id: str
    object: Literal["drain"] = "drain"
    deleted: bool = True


class DrainTestOut(WireModel):
    object: Literal["drain_test"] = "drain_test"
    drain_id: str
    ok: bool
    response_status: int | None = None
    error: str | None = None
    bytes_sent: int
    duration_ms: int


# --- notification recipients ----------------------------------------------------------------------

RecipientType = Literal["email", "sms", "whatsapp"]


class RecipientCreate(RequestModel):
    type: RecipientType
    value: Annotated[
        str, Field(min_length=1, max_length=320, description="An email address, or a phone number in E.164 form.")
    ]
    name: Name | None = None


class RecipientUpdate(RequestModel):
    enabled: bool | None = None
    name: Name | None = None
    value: Annotated[str, Field(min_length=1, max_length=320)] | None = None


class RecipientOut(WireModel):
    id: str
    object: Literal["notification_recipient"] = "notification_recipient"
    type: RecipientType
    value: str
    name: str | None = None
    enabled: bool
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: NotificationRecipient, subaccount_id: uuid.UUID | None = None) -> RecipientOut:
        return cls(
            id=str(row.id),
            subaccount_id=str(subaccount_id) if subaccount_id else None,
            type=row.type,
            value=row.value,
            name=row.name,
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


RecipientPage = page_model(RecipientOut)


class RecipientDeletedOut(WireModel):
    id: str
    object: Literal["notification_recipient"] = "notification_recipient"
    deleted: bool = True

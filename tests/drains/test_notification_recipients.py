"""Notification recipients with the official 0.3 client, over both backends: email, SMS and WhatsApp
recipients created (phone numbers kept in E.164), listed with filters, updated, deleted; bad values,
duplicates and unknown ids answer the documented codes and create nothing."""

from __future__ import annotations

import uuid

import pytest
from bctrl._generated.core.api_error import ApiError

from tests.drains.conftest import sdk_of


async def refused(call, status: int, **kwargs) -> str:
    with pytest.raises(ApiError) as excinfo:
        await call(**kwargs)
    assert excinfo.value.status_code == status, excinfo.value.body
    return excinfo.value.body["error"]["code"]


async def test_recipients_are_created_listed_updated_and_deleted(sdk):
    email = await sdk.notification_recipients.create(type="email", value="Ops@Example.COM", name="on call")
    assert (email.object, email.type, email.value, email.name, email.enabled) == (
        "notification_recipient",
        "email",
        "Ops@example.com",
        "on call",
        True,
    )
    sms = await sdk.notification_recipients.create(type="sms", value="+1 (415) 555-0123")
    assert sms.value == "+14155550123"
    whatsapp = await sdk.notification_recipients.create(type="whatsapp", value="+14155550123")
    assert whatsapp.value == "+14155550123"  # the same number on another channel is another recipient

    listed = await sdk.notification_recipients.list()
    assert [r.id for r in listed.data] == [whatsapp.id, sms.id, email.id]  # newest first
    assert [r.id for r in (await sdk.notification_recipients.list(order="asc", limit=2)).data] == [email.id, sms.id]
    assert [r.id for r in (await sdk.notification_recipients.list(type="sms")).data] == [sms.id]

    changed = await sdk.notification_recipients.update(sms.id, value="+44 20 7946 0958", enabled=False)
    assert changed.value == "+442079460958" and changed.enabled is False and changed.updated_at >= sms.updated_at
    assert [r.id for r in (await sdk.notification_recipients.list(enabled=False)).data] == [sms.id]
    renamed = await sdk.notification_recipients.update(email.id, name="day shift")
    assert renamed.name == "day shift" and renamed.value == email.value

    gone = await sdk.notification_recipients.delete(sms.id)
    assert gone.deleted and gone.id == sms.id and gone.object == "notification_recipient"
    assert {r.id for r in (await sdk.notification_recipients.list()).data} == {email.id, whatsapp.id}
    code = await refused(sdk.notification_recipients.delete, 404, recipient_id=sms.id)
    assert code == "notification_recipient.not_found"


async def test_bad_recipients_answer_documented_codes_and_create_nothing(dserver, sdk):
    create = sdk.notification_recipients.create
    assert await refused(create, 400, type="email", value="not-an-address") == "notification_recipient.invalid_email"
    assert await refused(create, 400, type="sms", value="555-0123") == "notification_recipient.invalid_phone"
    assert await refused(create, 400, type="whatsapp", value="+0123456789") == "notification_recipient.invalid_phone"
    assert await refused(create, 400, type="email", value="   ") == "notification_recipient.value_required"
    raw = await sdk.http.post(
        "/v1/notification-recipients", json={"type": "pager", "value": "x"}, headers=sdk.raw_headers
    )
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "request.invalid"
    assert (await sdk.notification_recipients.list()).data == []

    made = await create(type="email", value="a@example.com")
    assert await refused(create, 409, type="email", value="a@EXAMPLE.com") == "notification_recipient.duplicate"
    other = await create(type="email", value="b@example.com")
    update = sdk.notification_recipients.update
    code = await refused(update, 409, recipient_id=other.id, value="a@example.com")
    assert code == "notification_recipient.duplicate"
    code = await refused(update, 400, recipient_id=other.id, value="nope")
    assert code == "notification_recipient.invalid_email"
    code = await refused(update, 404, recipient_id=str(uuid.uuid4()), enabled=False)
    assert code == "notification_recipient.not_found"
    async with sdk_of(dserver) as stranger:  # another tenant's recipient is not found
        code = await refused(stranger.notification_recipients.update, 404, recipient_id=made.id, name="x")
        assert code == "notification_recipient.not_found"
        # The same address is free in another tenant.
        assert (await stranger.notification_recipients.create(type="email", value="a@example.com")).id != made.id


async def test_a_subaccounts_recipients_and_drains_are_its_own(sdk):
    sub = await sdk.subaccounts.create(name=f"team-{uuid.uuid4().hex[:6]}")
    inside = {**sdk.raw_headers, "BCTRL-Subaccount-Id": sub.id}
    made = await sdk.http.post(
        "/v1/notification-recipients", json={"type": "email", "value": "team@example.com"}, headers=inside
    )
    assert made.status_code == 201 and made.json()["subaccountId"] == sub.id
    drain = await sdk.http.post(
        "/v1/drains", json={"destination": {"type": "https", "url": "http://127.0.0.1:9/x"}}, headers=inside
    )
    assert drain.status_code == 201 and drain.json()["subaccountId"] == sub.id
    listed = await sdk.http.get("/v1/drains", headers=inside)
    assert [d["id"] for d in listed.json()["data"]] == [drain.json()["id"]]
    # The parent, acting as itself, sees neither.
    assert (await sdk.notification_recipients.list()).data == [] and (await sdk.drains.list()).data == []
    assert await refused(sdk.drains.get, 404, drain_id=drain.json()["id"]) == "drain.not_found"

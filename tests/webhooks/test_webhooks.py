"""Webhooks through the official 0.3 client: every route, signed deliveries of a browser's events to a
receiver on 127.0.0.1, bad input, and secrets shown only where they are issued."""

from __future__ import annotations

import uuid

import orjson
import pytest
from bctrl._generated.errors import BadRequestError, NotFoundError
from sqlalchemy import text
from standardwebhooks import Webhook as Verifier


async def test_every_route_and_a_browser_s_events_arrive_signed(sdk, receiver, wh_server, capsys):
    rx = receiver()
    made = await sdk.webhooks.create(url=rx.url, events=["runtime.*", "webhook.test"], name="ops")
    rx.secret = made.secret
    assert made.secret.startswith("whsec_") and made.enabled and made.events == ["runtime.*", "webhook.test"]

    got = await sdk.webhooks.get(made.id)
    listed = await sdk.webhooks.list()
    assert [w.id for w in listed.data] == [made.id] and got.url == rx.url
    # The secret is shown once: get and list have none.
    assert "secret" not in got.model_dump() and made.secret not in listed.model_dump_json()

    browser = await sdk.browsers.create(wait=30, recording=False)
    await sdk.browsers.stop(browser.id, wait=30)
    await rx.wait_for(lambda r: any(t == "runtime.stopped" for t in r.types()))
    first = rx.received[0]
    assert first.body["data"]["runtimeId"] == browser.id and first.body["data"]["object"] == "event"
    assert all(t.startswith("runtime.") for t in rx.types())
    # Each event once, in the order the browser's events were written.
    seqs = [r.body["data"]["seq"] for r in rx.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    deliveries = await sdk.webhooks.deliveries.list(made.id, order="asc")
    assert [d.id for d in deliveries.data[: len(rx.received)]] == [r.delivery_id for r in rx.received]
    sent = deliveries.data[0]
    assert sent.status == "sent" and sent.response_status == 204 and sent.attempt_count == 1
    assert sent.event_id == first.body["id"] and sent.webhook_id == made.id

    # test: a queued synthetic event, delivered signed.
    tested = await sdk.webhooks.test(made.id)
    assert tested.status == "pending" and tested.webhook_id == made.id
    await rx.wait_for(lambda r: r.types()[-1:] == ["webhook.test"])

    # redeliver: the same delivery (same webhook-id, same body) again.
    again = await sdk.webhooks.deliveries.redeliver(made.id, sent.id)
    assert again.id == sent.id
    await rx.wait_for(lambda r: [x.delivery_id for x in r.received].count(sent.id) == 2)
    copies = [x for x in rx.received if x.delivery_id == sent.id]
    assert copies[0].body == copies[1].body
    assert (await sdk.webhooks.deliveries.list(made.id, order="asc")).data[0].attempt_count == 2

    # rotate-secret: the new one signs; for the overlap the previous one signs too.
    rotated = await sdk.webhooks.rotate_secret(made.id)
    assert rotated.secret.startswith("whsec_") and rotated.secret != made.secret
    await sdk.webhooks.test(made.id)
    await rx.wait_for(lambda r: len(r.received[-1].signatures) == 2)
    last = rx.received[-1]
    raw = orjson.dumps(last.body).decode()
    for secret in (made.secret, rotated.secret):
        Verifier(secret).verify(raw, last.headers)

    # update: events, name, disable.
    updated = await sdk.webhooks.update(made.id, events=["*"], name="all", enabled=False)
    assert updated.events == ["*"] and updated.name == "all" and not updated.enabled

    deleted = await sdk.webhooks.delete(made.id)
    assert deleted.deleted and deleted.id == made.id
    with pytest.raises(NotFoundError):
        await sdk.webhooks.get(made.id)
    assert rx.bad_signatures == 0
    # Never in the logs, the events, or the database in clear.
    logged = capsys.readouterr()
    assert made.secret not in logged.out + logged.err and rotated.secret not in logged.out + logged.err
    events = await sdk.http.get("/v1/events", headers=sdk.raw_headers, params={"limit": 200})
    assert events.status_code == 200 and made.secret not in events.text and rotated.secret not in events.text
    async with wh_server.ctx.db.read() as s:
        dumped = " ".join(str(v) for row in (await s.execute(text("SELECT * FROM webhooks"))).all() for v in row)
    assert made.secret not in dumped and rotated.secret not in dumped


async def test_a_retried_create_replays_without_keeping_the_secret(sdk, receiver, wh_server):
    headers = {**sdk.raw_headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"url": receiver().url, "events": ["*"]}
    first = await sdk.http.post("/v1/webhooks", headers=headers, json=body)
    again = await sdk.http.post("/v1/webhooks", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotency-replayed") == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["secret"] == first.json()["secret"]
    assert len((await sdk.webhooks.list()).data) == 1
    async with wh_server.ctx.db.read() as s:
        stored = " ".join(str(r) for r in (await s.execute(text("SELECT response FROM idempotency_records"))).all())
    assert first.json()["secret"] not in stored


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://user:pw@example.com/", "http://"]
)
async def test_a_url_that_is_not_http_s_is_400_and_nothing_is_made(sdk, url):
    with pytest.raises(BadRequestError) as caught:
        await sdk.webhooks.create(url=url, events=["*"])
    assert caught.value.body["error"]["code"] == "webhook.url_invalid"
    assert (await sdk.webhooks.list()).data == []


async def test_bad_events_and_unknown_ids(sdk, receiver):
    rx = receiver()
    for events in ([], ["Runtime Started"], ["runtime.**"]):
        with pytest.raises(BadRequestError):
            await sdk.webhooks.create(url=rx.url, events=events)
    made = await sdk.webhooks.create(url=rx.url, events=["task.*"])
    with pytest.raises(BadRequestError):
        await sdk.webhooks.update(made.id, url="gopher://x")
    assert (await sdk.webhooks.get(made.id)).url == rx.url
    for call in (
        sdk.webhooks.get(str(uuid.uuid4())),
        sdk.webhooks.test("not-an-id"),
        sdk.webhooks.deliveries.list(str(uuid.uuid4())),
        sdk.webhooks.deliveries.redeliver(made.id, str(uuid.uuid4())),
    ):
        with pytest.raises(NotFoundError):
            await call


async def test_another_account_s_webhook_is_404(wh_server, sdk, receiver):
    from tests.webhooks.conftest import sdk_of

    made = await sdk.webhooks.create(url=receiver().url, events=["*"])
    async with sdk_of(wh_server) as other:
        with pytest.raises(NotFoundError):
            await other.webhooks.get(made.id)
        with pytest.raises(NotFoundError):
            await other.webhooks.delete(made.id)
        assert (await other.webhooks.list()).data == []


async def test_loopback_is_refused_unless_the_egress_mode_allows_it(make_server, receiver):
    from tests.webhooks.conftest import sdk_of

    async with make_server("sqlite") as srv, sdk_of(srv) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.webhooks.create(url=receiver().url, events=["*"])
        assert caught.value.body["error"]["code"] == "webhook.url_not_allowed"
        # The control plane's own port is refused even by name.
        with pytest.raises(BadRequestError):
            await client.webhooks.create(url="http://localhost:8787/v1/runtimes", events=["*"])

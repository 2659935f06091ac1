"""Drains with the official 0.3 client, over both backends: events of a real browser's run reach an
https receiver (signatures verified), an OTLP/HTTP collector (protobuf decoded) and moto's S3 (objects
read back and gunzipped), in commit order, filtered by category; a receiver that fails then recovers
gets every event, in order, once per batch id; wrong S3 credentials make `test` say so (403);
credentials and secrets are never answered; bad input answers the documented codes."""

from __future__ import annotations

import gzip
import re
import uuid
from contextlib import asynccontextmanager

import orjson
import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.types import DrainDestination_Https, DrainDestination_Otlp, DrainDestination_S3
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.drains.models import Drain
from app.runs import events
from app.runtimes.models import Runtime
from tests.drains.conftest import sdk_of
from tests.support import eventually


@asynccontextmanager
async def a_run(sdk, server):
    """A real browser's run (its id); the browser is stopped afterwards whatever happened."""
    made = await sdk.browsers.create(wait=30, recording=False)
    try:
        async with server.ctx.db.read() as s:
            run_id = (await s.execute(select(Runtime.active_run_id).where(Runtime.id == uuid.UUID(made.id)))).scalar()
        assert run_id is not None
        yield made.id, run_id
    finally:
        try:
            await sdk.browsers.stop(made.id)
        except ApiError:
            pass


async def console_events(server, run_id, count: int, start: int = 0) -> None:
    """`count` console events, each committed in its own transaction (as the run's writer would)."""
    for i in range(start, start + count):
        async with server.ctx.db.transaction() as s:
            await events.append(s, run_id, "console.log", "console", {"i": i})


def error_code(excinfo) -> str:
    return excinfo.value.body["error"]["code"]


async def test_https_drain_signed_batches_in_commit_order_filtered_by_category(dserver, sdk, signed_receiver):
    everything = await sdk.drains.create(destination=DrainDestination_Https(url=signed_receiver.url), name="all")
    assert everything.secret.startswith("whsec_") and everything.categories[0] == "lifecycle"
    signed_receiver.secret = everything.secret
    console_only = await sdk.drains.create(
        destination=DrainDestination_Https(url=signed_receiver.url + "/console"), categories=["console"]
    )
    assert console_only.secret != everything.secret
    async with a_run(sdk, dserver) as (browser_id, run_id):
        await console_events(dserver, run_id, 25)
        await sdk.browsers.stop(browser_id)

        def delivered(path):
            return [
                orjson.loads(line) for p, _, body in signed_receiver.requests if p == path for line in body.splitlines()
            ]

        await eventually(lambda: any(e["type"] == "runtime.stopped" for e in delivered("/")), timeout=20)
    # The console drain's batches are signed with its own secret: the receiver checks with the first
    # drain's, so they were refused (401) until now; it now takes the console drain's.
    signed_receiver.secret = console_only.secret
    await eventually(lambda: any(p == "/console" for p, _, _ in signed_receiver.requests), timeout=10)

    all_events = delivered("/")
    seqs = [e["seq"] for e in all_events if e.get("runId") == str(run_id)]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs
    assert [e["data"]["i"] for e in all_events if e["type"] == "console.log"] == list(range(25))
    assert {e["category"] for e in all_events} >= {"lifecycle", "console"}
    assert all(e["object"] == "event" and e["runtimeId"] == browser_id for e in all_events)

    await eventually(lambda: len(delivered("/console")) == 25, timeout=10)
    console = delivered("/console")
    assert {e["category"] for e in console} == {"console"}
    assert [e["data"]["i"] for e in console] == list(range(25))

    got = await sdk.drains.get(everything.id)
    assert got.status.events_sent == len(all_events) and got.status.bytes_sent > 0
    assert got.status.last_delivery_at is not None and got.status.last_error is None
    listed = await sdk.drains.list()
    raw = await sdk.http.get(f"/v1/drains/{everything.id}", headers=sdk.raw_headers)
    assert "whsec_" not in raw.text and "secret" not in raw.json()
    assert {d.id for d in listed.data} == {everything.id, console_only.id}
    assert all(getattr(d, "secret", None) is None for d in listed.data)


async def test_a_receiver_failing_then_recovering_gets_every_event_in_order(dserver, sdk, signed_receiver):
    drain = await sdk.drains.create(destination=DrainDestination_Https(url=signed_receiver.url), categories=["console"])
    signed_receiver.secret = drain.secret
    signed_receiver.fail_next = 6
    failed_before = _count("failed")
    async with a_run(sdk, dserver) as (_, run_id):
        await console_events(dserver, run_id, 15)
        failing = await eventually(lambda: _failing(sdk, drain.id), timeout=15)
        assert "HTTP 500" in failing.status.last_error and failing.status.next_attempt_at is not None
        await eventually(lambda: len(signed_receiver.events()) == 15, timeout=30)
        await console_events(dserver, run_id, 5, start=15)
        await eventually(lambda: len(signed_receiver.events()) == 20, timeout=15)
    assert [e["data"]["i"] for e in signed_receiver.events()] == list(range(20))
    # Every webhook-id carried the same events each time it was sent: no event twice across batches.
    ids = [e["id"] for _, batch in signed_receiver.batches for e in batch]
    assert len(ids) == len(set(ids)) == 20
    done = await sdk.drains.get(drain.id)
    assert done.status.events_sent == 20 and done.status.next_attempt_at is None
    assert _count("failed") - failed_before >= 6  # /metrics counts every failed attempt


def _count(outcome: str) -> float:
    labels = {"kind": "https", "outcome": outcome}
    return REGISTRY.get_sample_value("bctrl_drain_deliveries_total", labels) or 0.0


async def _failing(sdk, drain_id):
    got = await sdk.drains.get(drain_id)
    return got if got.status.last_error else None


async def test_otlp_drain_sends_protobuf_logs_and_the_finished_runs_spans(dserver, sdk, otlp_receiver):
    await sdk.secrets.create(path="drains/otlp-token", type="value", value="tok-from-the-vault")
    drain = await sdk.drains.create(
        destination=DrainDestination_Otlp(
            endpoint=otlp_receiver.url,
            headers={"x-team": "literal-team-key", "x-token": "secret:drains/otlp-token"},
        )
    )
    assert drain.secret is None
    assert drain.destination.headers == {"x-team": "[redacted]", "x-token": "secret:drains/otlp-token"}
    async with a_run(sdk, dserver) as (browser_id, run_id):
        await console_events(dserver, run_id, 3)
        await sdk.browsers.stop(browser_id)
        await eventually(lambda: otlp_receiver.spans(), timeout=20)
    records = otlp_receiver.records()
    names = [r.event_name for r in records]
    assert "runtime.stopped" in names and names.count("console.log") == 3
    first = next(r for r in records if r.event_name == "console.log")
    attributes = {kv.key: kv.value for kv in first.attributes}
    assert attributes["bctrl.run.id"].string_value == str(run_id)
    assert attributes["bctrl.event.category"].string_value == "console"
    assert orjson.loads(first.body.string_value)["data"] == {"i": 0}
    assert first.time_unix_nano > 0 and first.trace_id == run_id.bytes
    headers = otlp_receiver.requests[0][1]
    assert headers["x-team"] == "literal-team-key" and headers["x-token"] == "tok-from-the-vault"
    spans = otlp_receiver.spans()
    assert spans and all(s.trace_id == run_id.bytes for s in spans)
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].end_time_unix_nano >= roots[0].start_time_unix_nano > 0
    raw = await sdk.http.get(f"/v1/drains/{drain.id}", headers=sdk.raw_headers)
    assert "literal-team-key" not in raw.text and "tok-from-the-vault" not in raw.text
    # An update that sends the redacted value back keeps it; another endpoint is checked again.
    moved = await sdk.drains.update(
        drain.id, destination=DrainDestination_Otlp(endpoint=otlp_receiver.url + "/", headers=drain.destination.headers)
    )
    assert moved.destination.headers["x-team"] == "[redacted]"
    result = await sdk.drains.test(drain.id)
    assert result.ok and result.response_status == 200
    assert otlp_receiver.requests[-1][1]["x-team"] == "literal-team-key"


async def test_s3_drain_writes_gzipped_ndjson_objects_and_test_reports_wrong_credentials(dserver, sdk, moto_s3):
    key = moto_s3["key"]
    await sdk.secrets.create(path="drains/s3/id", type="value", value=key["AccessKeyId"])
    await sdk.secrets.create(path="drains/s3/secret", type="value", value=key["SecretAccessKey"])
    await sdk.secrets.create(path="drains/s3/wrong", type="value", value="not-the-secret-key")
    prefix = f"bctrl-{uuid.uuid4().hex[:8]}"

    def destination(secret_ref: str) -> DrainDestination_S3:
        return DrainDestination_S3(
            access_key_id="secret:drains/s3/id",
            secret_access_key=secret_ref,
            bucket="drained",
            region="us-east-1",
            endpoint=moto_s3["endpoint"],
            prefix=prefix,
        )

    drain = await sdk.drains.create(destination=destination("secret:drains/s3/secret"), categories=["console"])
    assert drain.destination.access_key_id == "secret:drains/s3/id" and drain.destination.prefix == prefix
    ok = await sdk.drains.test(drain.id)
    assert ok.ok and ok.response_status == 200 and ok.error is None and ok.bytes_sent > 0

    wrong = await sdk.drains.create(destination=destination("secret:drains/s3/wrong"), categories=["console"])
    failed = await sdk.drains.test(wrong.id)
    assert failed.ok is False and failed.response_status == 403 and "403" in failed.error
    assert "not-the-secret-key" not in failed.error and key["SecretAccessKey"] not in failed.error

    async with a_run(sdk, dserver) as (_, run_id):
        await console_events(dserver, run_id, 7)
        client = moto_s3["client"]

        def objects():
            listed = client.list_objects_v2(Bucket="drained", Prefix=prefix + "/")
            return [o["Key"] for o in listed.get("Contents", []) if "-" in o["Key"].rsplit("/", 1)[-1]]

        def lines():
            out = []
            for k in sorted(objects(), key=lambda k: int(k.rsplit("/", 1)[-1].split("-")[0])):
                body = client.get_object(Bucket="drained", Key=k)["Body"].read()
                out += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
            return [e for e in out if e["type"] == "console.log"]

        await eventually(lambda: len(lines()) == 7, timeout=20)
    pattern = rf"^{prefix}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/\d+-\d+\.ndjson\.gz$"
    assert all(re.match(pattern, k) for k in objects()), objects()
    assert [e["data"]["i"] for e in lines()] == list(range(7))
    # The drain with the wrong secret never delivers: it says why and when it tries again.
    stuck = await eventually(lambda: _failing(sdk, wrong.id), timeout=15)
    assert "403" in stuck.status.last_error and stuck.status.events_sent == 0
    raw = await sdk.http.get("/v1/drains", headers=sdk.raw_headers)
    assert key["SecretAccessKey"] not in raw.text and key["AccessKeyId"] not in raw.text


async def test_disabled_drain_keeps_its_place_and_resumes(dserver, sdk, signed_receiver):
    drain = await sdk.drains.create(destination=DrainDestination_Https(url=signed_receiver.url), categories=["console"])
    signed_receiver.secret = drain.secret
    async with a_run(sdk, dserver) as (_, run_id):
        await console_events(dserver, run_id, 2)
        await eventually(lambda: len(signed_receiver.events()) == 2, timeout=15)
        off = await sdk.drains.update(drain.id, enabled=False, name="paused")
        assert off.enabled is False and off.name == "paused"

        async def idle():  # a round claimed just before the update may still be reading: let it end
            async with dserver.ctx.db.read() as s:
                return (await s.get(Drain, uuid.UUID(drain.id))).lease_owner is None

        await eventually(idle, timeout=10)
        await console_events(dserver, run_id, 3, start=2)
        assert (await sdk.drains.get(drain.id)).status.events_sent == 2
        await sdk.drains.update(drain.id, enabled=True)
        await eventually(lambda: len(signed_receiver.events()) == 5, timeout=15)
    assert [e["data"]["i"] for e in signed_receiver.events()] == list(range(5))
    gone = await sdk.drains.delete(drain.id)
    assert gone.deleted and gone.id == drain.id
    with pytest.raises(ApiError) as excinfo:
        await sdk.drains.get(drain.id)
    assert excinfo.value.status_code == 404 and error_code(excinfo) == "drain.not_found"


async def test_idempotent_create_replays_the_drain_with_a_fresh_secret(dserver, sdk, signed_receiver):
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"destination": {"type": "https", "url": signed_receiver.url}, "categories": ["console"]}
    first = await sdk.http.post("/v1/drains", json=body, headers={**sdk.raw_headers, **key})
    again = await sdk.http.post("/v1/drains", json=body, headers={**sdk.raw_headers, **key})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and again.headers["Idempotency-Replayed"] == "true"
    assert first.json()["secret"] != again.json()["secret"] and again.json()["secret"].startswith("whsec_")
    # The replay's secret is the one that signs from now on.
    signed_receiver.secret = again.json()["secret"]
    result = await sdk.drains.test(first.json()["id"])
    assert result.ok and signed_receiver.events()[-1]["type"] == "drain.test"


async def test_bad_drains_answer_documented_codes(dserver, sdk, signed_receiver):
    async def refused(status: int, **kwargs) -> str:
        with pytest.raises(ApiError) as excinfo:
            await sdk.drains.create(**kwargs)
        assert excinfo.value.status_code == status, excinfo.value.body
        return error_code(excinfo)

    await sdk.secrets.create(path="drains/bad/id", type="value", value="AKIA")
    plain = DrainDestination_S3(
        access_key_id="AKIAPLAINKEY", secret_access_key="plain", bucket="drained", region="us-east-1"
    )
    assert await refused(400, destination=plain) == "drain.destination_invalid"
    missing = DrainDestination_S3(
        access_key_id="secret:drains/bad/id", secret_access_key="secret:nowhere/x", bucket="drained", region="us-east-1"
    )
    assert await refused(400, destination=missing) == "drain.destination_invalid"
    assert await refused(400, destination=DrainDestination_Https(url="ftp://example.com/x")) == (
        "drain.destination_invalid"
    )
    # The control plane's own port is never a destination, even where loopback is allowed.
    control = f"http://127.0.0.1:{dserver.settings.port}/"
    assert await refused(400, destination=DrainDestination_Https(url=control)) == "drain.destination_invalid"
    bad_header = DrainDestination_Otlp(endpoint=signed_receiver.url, headers={"Host": "x"})
    assert await refused(400, destination=bad_header) == "drain.destination_invalid"
    raw = await sdk.http.post(
        "/v1/drains",
        json={"destination": {"type": "https", "url": signed_receiver.url}, "categories": ["nope"]},
        headers=sdk.raw_headers,
    )
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "request.invalid"
    assert (await sdk.drains.list()).data == []  # nothing half-created

    made = await sdk.drains.create(destination=DrainDestination_Https(url=signed_receiver.url))
    with pytest.raises(ApiError) as excinfo:
        await sdk.drains.update(made.id, destination=DrainDestination_Otlp(endpoint=signed_receiver.url))
    assert excinfo.value.status_code == 400 and error_code(excinfo) == "drain.destination_type_changed"
    for call in (sdk.drains.get, sdk.drains.delete, sdk.drains.test):
        with pytest.raises(ApiError) as excinfo:
            await call(str(uuid.uuid4()))
        assert excinfo.value.status_code == 404 and error_code(excinfo) == "drain.not_found"
    async with sdk_of(dserver) as other:  # another tenant's drain is not found
        with pytest.raises(ApiError) as excinfo:
            await other.drains.get(made.id)
        assert excinfo.value.status_code == 404


async def test_private_destinations_are_refused_unless_allowed(server, signed_receiver):
    async with sdk_of(server) as sdk:
        with pytest.raises(ApiError) as excinfo:
            await sdk.drains.create(destination=DrainDestination_Https(url=signed_receiver.url))
        assert excinfo.value.status_code == 400 and error_code(excinfo) == "drain.destination_invalid"
        assert "BCTRL_DRAIN_EGRESS" in excinfo.value.body["error"]["message"]

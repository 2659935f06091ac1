"""Sending one batch of events to a drain's destination.

- `https`: one POST of NDJSON (an event a line), signed the Standard Webhooks way (`webhook-id`,
  `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over `id.timestamp.body` with the drain's
  `whsec_` secret). `webhook-id` is the batch's id, the same on every retry of it.
- `otlp`: the events as OTLP/HTTP logs to `<endpoint>/v1/logs`, then the finished spans of runs that
  ended in the batch to `<endpoint>/v1/traces` (protobuf), with the drain's headers.
- `s3`/`r2`: one gzipped NDJSON object per batch (app/drains/s3.py).

Any answer but 2xx, a transport error, a refused address or unresolvable credentials fails the batch
(`Failed`, with a message fit for `lastError`: never a credential)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from app.ai.secrets import SecretBox
from app.core import clock
from app.core.context import AppContext
from app.core.errors import DomainError
from app.drains import net, otlp, s3
from app.drains.models import Drain
from app.vault import service as vault
from app.webhooks import signing

NDJSON = "application/x-ndjson"
UNREADABLE = "the drain's sealed values were sealed under another server key (BCTRL_SECRET_KEY changed)"


class Failed(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message[:1000]
        self.status = status


@dataclass(frozen=True)
class Batch:
    id: str  # stable for the same events: `webhook-id`, and in the S3 key through first/last
    first: int
    last: int
    when: datetime  # the first event's time: the S3 key's hour
    events: list[dict[str, Any]]
    spans: list[dict[str, Any]] = field(default_factory=list)

    def ndjson(self) -> bytes:
        return b"".join(orjson.dumps(e) + b"\n" for e in self.events)


@dataclass(frozen=True)
class Sent:
    bytes: int
    status: int | None


def box(ctx: AppContext) -> SecretBox:
    return SecretBox(ctx.signing_key)


def opened(ctx: AppContext, sealed: str | None) -> str | None:
    if sealed is None:
        return None
    plain = box(ctx).open(sealed)
    if plain is None:
        raise Failed(UNREADABLE)
    return plain


async def _credential(ctx: AppContext, drain: Drain, ref: str, field_name: str) -> str:
    try:
        return await vault.signing_value(ctx, drain.account_id, ref, {"kind": "drain", "id": str(drain.id)})
    except DomainError as e:
        raise Failed(f"{field_name} {ref}: {e.message}") from None


def headers_of(ctx: AppContext, drain: Drain) -> dict[str, str]:
    """An otlp drain's headers as sent: literal values (kept sealed) and vault references."""
    literal = orjson.loads(opened(ctx, drain.headers_sealed) or "{}")
    return {**(drain.destination.get("headers") or {}), **literal}


async def _resolved_headers(ctx: AppContext, drain: Drain) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers_of(ctx, drain).items():
        found[name] = await _credential(ctx, drain, value, f"header {name}") if value.startswith("secret:") else value
    return found


async def _call(ctx: AppContext, method: str, url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        answer = await net.send(ctx, method, url, body, headers)
    except net.Refused as e:
        raise Failed(f"destination refused: {e}") from None
    except httpx.TimeoutException:
        raise Failed(f"{url}: no answer within {ctx.settings.drains_timeout_seconds:g} s") from None
    except httpx.HTTPError as e:
        raise Failed(f"{url}: {type(e).__name__}: {e}"[:500]) from None
    if not 200 <= answer.status < 300:
        detail = " ".join(answer.text.split())[:300]
        raise Failed(f"{url} answered HTTP {answer.status}" + (f": {detail}" if detail else ""), answer.status)
    return answer.status


async def _https(ctx: AppContext, drain: Drain, batch: Batch) -> Sent:
    body = batch.ndjson()
    secret = opened(ctx, drain.secret_sealed)
    if secret is None:
        raise Failed("the drain has no signing secret")
    now = clock.now()
    headers = {
        "content-type": NDJSON,
        **signing.headers([secret], batch.id, now, body),
        "bctrl-drain-id": str(drain.id),
    }
    status = await _call(ctx, "POST", drain.destination["url"], body, headers)
    return Sent(len(body), status)


async def _otlp(ctx: AppContext, drain: Drain, batch: Batch) -> Sent:
    endpoint = drain.destination["endpoint"].rstrip("/")
    headers = {**await _resolved_headers(ctx, drain), "content-type": otlp.CONTENT_TYPE}
    account = str(drain.account_id)
    body = otlp.logs_body(account, batch.events, time.time_ns())
    status = await _call(ctx, "POST", f"{endpoint}/v1/logs", body, headers)
    size = len(body)
    if batch.spans:
        spans = otlp.traces_body(account, batch.spans)
        status = await _call(ctx, "POST", f"{endpoint}/v1/traces", spans, headers)
        size += len(spans)
    return Sent(size, status)


async def _s3(ctx: AppContext, drain: Drain, batch: Batch) -> Sent:
    destination = drain.destination
    access = await _credential(ctx, drain, destination["accessKeyId"], "accessKeyId")
    secret = await _credential(ctx, drain, destination["secretAccessKey"], "secretAccessKey")
    body = s3.gzipped(batch.ndjson())
    key = s3.object_key(destination.get("prefix") or "", batch.when, batch.first, batch.last)
    url = s3.object_url(destination, key)
    _, region = s3.endpoint_of(destination)
    status = await _call(ctx, "PUT", url, body, s3.signed_headers(url, region, access, secret, body))
    return Sent(len(body), status)


_SENDERS = {"https": _https, "otlp": _otlp, "s3": _s3, "r2": _s3}


async def deliver(ctx: AppContext, drain: Drain, batch: Batch) -> Sent:
    """Send `batch`; Failed says why it was not delivered."""
    return await _SENDERS[drain.kind](ctx, drain, batch)


def test_batch(drain: Drain) -> Batch:
    """One synthetic event (`drain.test`), as the drain's destination would receive a real one."""
    now = clock.now()
    when = clock.iso(now)
    event_id = str(uuid.uuid4())
    event = {
        "id": event_id,
        "object": "event",
        "type": "drain.test",
        "category": "lifecycle",
        "channel": "platform",
        "source": "system",
        "outcome": "ok",
        "actor": {"type": "platform"},
        "seq": 0,
        "data": {"drainId": str(drain.id), "test": True},
        "time": when,
        "timestamp": when,
        "createdAt": when,
        "updatedAt": when,
    }
    return Batch(id=f"drain_test_{event_id}", first=0, last=0, when=now, events=[event])

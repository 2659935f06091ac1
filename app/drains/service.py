"""Drains: create, list, get, update, delete and test.

A drain starts at the outbox's head when created (events after now). Its destination type is fixed at
create (400 `drain.destination_type_changed`); its other fields may change, and a disabled drain keeps
its place. Credentials are vault references (`secret:<path>[#field][@version]`), checked to exist at
create and update, resolved on every delivery; literal OTLP header values are sealed under the server
key and answered as `[redacted]` (an update sending `[redacted]` back keeps the stored value). An
`https` drain's signing secret (`whsec_...`) is made at create, sealed, and answered only then (and
on an idempotent replay of that create, freshly made: the replay rotates it)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import DomainError, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.drains import delivery, net
from app.drains.models import Drain
from app.outbox import service as outbox
from app.vault import service as vault
from app.webhooks import signing

REDACTED = "[redacted]"
CATEGORIES = (
    *("lifecycle", "control", "machine", "human", "secrets", "connection", "alert"),
    *("agent", "page", "console", "network", "captcha", "vm", "kernel"),
)
DEFAULT_PREFIX = "events"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9]{1,64}$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]*$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/=-]{0,512}$")
# Headers a drain may not set: the request's own framing and what the server signs or sends itself.
_RESERVED = {"host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"}
MAX_HEADERS = 32


def not_found(ref: object) -> NotFound:
    return NotFound("Drain not found", code="drain.not_found", details={"drainId": str(ref)[:100]})


def invalid(field: str, message: str, code: str = "drain.destination_invalid") -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}",
        code=code,
        details={"fields": [{"field": field, "in": "body", "message": message, "type": code}]},
    )


async def _check_url(ctx: AppContext, field: str, url: str, *, resolve: bool = True) -> str:
    if len(url) > 2048 or not re.fullmatch(r"https?://[^\s/?#@]+(?:[/?#]\S*)?", url):
        raise invalid(field, "an http or https URL with a host, no credentials, at most 2048 characters")
    if resolve:
        try:
            await net.addresses(ctx, url)
        except net.Refused as e:
            raise invalid(field, str(e)) from None
    return url


async def _check_reference(ctx: AppContext, account_id: uuid.UUID, field: str, ref: Any) -> str:
    if not isinstance(ref, str) or not ref.startswith("secret:"):
        raise invalid(field, "a vault reference such as secret:drains/s3#value, never the credential itself")
    try:
        target, _, _ = vault.parse_reference(ref)
        await vault.resolve(ctx, account_id, target)
    except DomainError as e:
        raise invalid(field, e.message) from None
    return ref


async def _headers(
    ctx: AppContext, account_id: uuid.UUID, given: dict[str, str] | None, before: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(references, literal values) of an otlp drain's headers; `[redacted]` keeps a stored value."""
    if given is None:
        given = dict(before)
    if len(given) > MAX_HEADERS:
        raise invalid("destination.headers", f"at most {MAX_HEADERS} headers")
    references: dict[str, str] = {}
    literal: dict[str, str] = {}
    for name, value in given.items():
        field = f"destination.headers.{name}"
        if not _HEADER.fullmatch(name) or name.lower() in _RESERVED:
            raise invalid(field, "a header name this server may send (not Host, Content-Type or framing headers)")
        if not isinstance(value, str) or len(value) > 4096 or not _HEADER_VALUE.fullmatch(value):
            raise invalid(field, "a value of at most 4096 printable ASCII characters")
        if value == REDACTED:
            if name not in before:
                raise invalid(field, f"{REDACTED} keeps a stored value, and this header has none")
            value = before[name]
        if value.startswith("secret:"):
            references[name] = await _check_reference(ctx, account_id, field, value)
        else:
            literal[name] = value
    return references, literal


@dataclass(frozen=True)
class Checked:
    destination: dict[str, Any]
    headers: dict[str, str] | None  # literal otlp header values, to seal


async def check_destination(
    ctx: AppContext, account_id: uuid.UUID, given: dict[str, Any], before: dict[str, str] | None = None
) -> Checked:
    """The destination as stored (`type` and its fields), checked: 400 `drain.destination_invalid`."""
    kind = given["type"]
    if kind == "https":
        return Checked({"type": kind, "url": await _check_url(ctx, "destination.url", given["url"])}, None)
    if kind == "otlp":
        endpoint = await _check_url(ctx, "destination.endpoint", given["endpoint"])
        references, literal = await _headers(ctx, account_id, given.get("headers"), before or {})
        return Checked({"type": kind, "endpoint": endpoint, "headers": references}, literal)
    prefix = given.get("prefix")
    prefix = DEFAULT_PREFIX if prefix is None else prefix.strip("/")
    if not _PREFIX.fullmatch(prefix):
        raise invalid("destination.prefix", "letters, digits, / and !_.*'()=- (at most 512 characters)")
    if not _BUCKET.fullmatch(given["bucket"]):
        raise invalid("destination.bucket", "an S3 bucket name (3 to 63 lowercase letters, digits, dots, dashes)")
    stored: dict[str, Any] = {"type": kind, "bucket": given["bucket"], "prefix": prefix}
    for name in ("accessKeyId", "secretAccessKey"):
        stored[name] = await _check_reference(ctx, account_id, f"destination.{name}", given[name])
    if kind == "r2":
        if not _ACCOUNT.fullmatch(given["accountId"]):
            raise invalid("destination.accountId", "a Cloudflare account id (letters and digits)")
        stored["accountId"] = given["accountId"]
    else:
        if not _REGION.fullmatch(given["region"]):
            raise invalid("destination.region", "a region name such as us-east-1")
        stored["region"] = given["region"]
        endpoint = given.get("endpoint")
        stored["endpoint"] = await _check_url(ctx, "destination.endpoint", endpoint) if endpoint else None
    return Checked(stored, None)


def _categories(given: list[str] | None) -> list[str]:
    if given is None:
        return list(CATEGORIES)
    return [c for c in CATEGORIES if c in set(given)]


@dataclass(frozen=True)
class DrainSpec:
    destination: dict[str, Any]
    categories: list[str] | None = None
    name: str | None = None


def _seal(ctx: AppContext, values: dict[str, str] | None) -> str | None:
    return delivery.box(ctx).seal(orjson.dumps(values).decode()) if values else None


async def create(ctx: AppContext, p: Principal, spec: DrainSpec) -> tuple[Drain, str | None]:
    """The new drain and its signing secret (https only)."""
    checked = await check_destination(ctx, p.account_id, spec.destination)
    secret = signing.new_secret(32) if checked.destination["type"] == "https" else None
    head = await outbox.head(ctx)
    now = clock.now()
    row = Drain(
        id=ids.new_id(),
        account_id=p.account_id,
        name=spec.name,
        kind=checked.destination["type"],
        destination=_with_redacted(checked),
        headers_sealed=_seal(ctx, checked.headers),
        secret_sealed=delivery.box(ctx).seal(secret) if secret else None,
        categories=_categories(spec.categories),
        enabled=True,
        cursor_xact=head.xact,
        cursor_position=head.position,
        events_sent=0,
        bytes_sent=0,
        failures=0,
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as s:
        s.add(row)
    return row, secret


async def rotate_secret(ctx: AppContext, row: Drain) -> tuple[Drain, str | None]:
    """A fresh signing secret for an https drain (an idempotent create's replay answers it)."""
    if row.kind != "https":
        return row, None
    secret = signing.new_secret(32)
    async with ctx.db.transaction() as s:
        row = await _fresh(s, row)
        row.secret_sealed = delivery.box(ctx).seal(secret)
    return row, secret


async def get(ctx: AppContext, p: Principal, drain_id: str) -> Drain:
    row = await get_owned(ctx.db, Drain, drain_id, p.account_id)
    if row is None:
        raise not_found(drain_id)
    return row


async def list_drains(ctx: AppContext, account_id: uuid.UUID, page: PageParams, *, newest_first: bool):
    stmt = select(Drain).where(Drain.account_id == account_id)
    return await fetch_by_id(ctx.db, stmt, Drain.id, page, newest_first=newest_first)


def literal_headers(ctx: AppContext, row: Drain) -> dict[str, str]:
    try:
        return orjson.loads(delivery.opened(ctx, row.headers_sealed) or "{}")
    except delivery.Failed:
        return {}


def shown_headers(row: Drain) -> dict[str, str]:
    """An otlp drain's headers as answered: references as they are, literal values redacted."""
    names = dict(row.destination.get("headers") or {})
    return {**names, **dict.fromkeys(row.destination.get("redacted") or (), REDACTED)}


async def update(ctx: AppContext, row: Drain, changes: dict[str, Any]) -> Drain:
    destination: Checked | None = None
    if changes.get("destination") is not None:
        given = changes["destination"]
        if given["type"] != row.kind:
            raise invalid(
                "destination.type",
                f"a drain's destination type is fixed ({row.kind}): create another drain",
                code="drain.destination_type_changed",
            )
        before = {**(row.destination.get("headers") or {}), **literal_headers(ctx, row)}
        destination = await check_destination(ctx, row.account_id, given, before)
    async with ctx.db.transaction() as s:
        row = await _fresh(s, row)
        if destination is not None:
            row.destination = _with_redacted(destination)
            row.headers_sealed = _seal(ctx, destination.headers)
        if "categories" in changes and changes["categories"] is not None:
            row.categories = _categories(changes["categories"])
        if "name" in changes:
            row.name = changes["name"]
        if "enabled" in changes and changes["enabled"] is not None:
            if changes["enabled"] and not row.enabled:
                row.next_attempt_at = None  # resumes at once, from its place
            row.enabled = changes["enabled"]
        if destination is not None:
            row.next_attempt_at = None  # a fixed destination is tried at once
        row.updated_at = clock.now()
    return row


async def _fresh(s, row: Drain) -> Drain:
    """The row as it is now, locked: the pump moves the cursor and figures meanwhile (a merge of the
    row read by the route would write its stale values back)."""
    found = (await s.execute(select(Drain).where(Drain.id == row.id).with_for_update())).scalar_one_or_none()
    if found is None:
        raise not_found(row.id)
    return found


def _with_redacted(checked: Checked) -> dict[str, Any]:
    """The stored destination: the names of literal headers are kept (values sealed) to answer them."""
    if checked.headers:
        return {**checked.destination, "redacted": sorted(checked.headers)}
    return checked.destination


async def delete(ctx: AppContext, row: Drain) -> uuid.UUID:
    async with ctx.db.transaction() as s:
        await s.execute(sql_delete(Drain).where(Drain.id == row.id))
    return row.id


@dataclass(frozen=True)
class TestResult:
    ok: bool
    status: int | None
    error: str | None
    bytes: int
    duration_ms: int


async def test(ctx: AppContext, row: Drain) -> TestResult:
    """One synthetic event sent now; the drain's place and figures do not change."""
    started = time.monotonic()
    try:
        sent = await delivery.deliver(ctx, row, delivery.test_batch(row))
    except delivery.Failed as e:
        return TestResult(False, e.status, e.message, 0, round((time.monotonic() - started) * 1000))
    return TestResult(True, sent.status, None, sent.bytes, round((time.monotonic() - started) * 1000))

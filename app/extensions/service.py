"""Browser extensions of an account: upload (or import from a URL), list, get, rename, delete, and
the unpacked copies the browsers that name them load.

An upload is received into the object store, copied to a scratch file, checked (app/extensions/
package.py) and kept in its normalized form under `extensions/<uuid>`; the raw upload is removed in
every case. A browser's launch resolves each id to a directory under `<data dir>/extensions/`
(unpacked once from the kept object, then reused) that the driver copies into the browser's reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from sqlalchemy import func, select

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.driver import DriverError
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from app.core.paging import PageParams, fetch_by_id
from app.extensions import package
from app.extensions.models import BrowserExtension
from app.runtimes.models import Runtime, RuntimeStatus
from app.storage import ObjectStore, make_store, new_key

# Extensions one account may keep.
MAX_PER_ACCOUNT = 100
IMPORT_TIMEOUT_SECONDS = 30.0
MAX_REDIRECTS = 5
UPLOAD_FIELDS = frozenset({"name"})
STORE_IDS = re.compile(r"^[a-p]{32}$")
STORE_HOSTS = ("chromewebstore.google.com", "chrome.google.com")
# Where Chromium's update service hands out a Web Store item as a CRX3.
STORE_DOWNLOAD = (
    "https://clients2.google.com/service/update2/crx?response=redirect&prodversion=156.0&acceptformat=crx3"
    "&x=id%3D{id}%26installsource%3Dondemand%26uc"
)


def not_found(extension_id: object) -> NotFound:
    return NotFound(
        "Browser extension not found",
        code="browser_extension.not_found",
        details={"extensionId": str(extension_id)},
    )


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    format: str | None = None
    source: str | None = None


# --- reading --------------------------------------------------------------------------------------------


async def get(ctx: AppContext, p: Principal, extension_id: str) -> BrowserExtension:
    row = await get_owned(ctx.db, BrowserExtension, extension_id, p.account_id)
    if row is None:
        raise not_found(extension_id)
    return row


async def list_extensions(
    ctx: AppContext, p: Principal, page: PageParams, flt: Filters, *, newest_first: bool
) -> tuple[list[BrowserExtension], str | None]:
    stmt = select(BrowserExtension).where(BrowserExtension.account_id == p.account_id)
    if flt.q:
        escaped = flt.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(func.lower(BrowserExtension.name).like(f"%{escaped}%", escape="\\"))
    if flt.format:
        stmt = stmt.where(BrowserExtension.format == flt.format)
    if flt.source:
        stmt = stmt.where(BrowserExtension.source == flt.source)
    return await fetch_by_id(ctx.db, stmt, BrowserExtension.id, page, newest_first=newest_first)


def _named(runtime: Runtime) -> list[str]:
    found = (runtime.launch_options or {}).get("extensions")
    return [str(x) for x in found] if isinstance(found, list) else []


async def _runtimes_naming(ctx: AppContext, account_id: uuid.UUID, *, live_only: bool) -> list[Runtime]:
    stmt = select(Runtime).where(
        Runtime.account_id == account_id, Runtime.deleted_at.is_(None), Runtime.launch_options.is_not(None)
    )
    if live_only:
        stmt = stmt.where(Runtime.status.in_(RuntimeStatus.LIVE))
    async with ctx.db.read() as s:
        return [r for r in (await s.execute(stmt)).scalars() if _named(r)]


async def browser_counts(ctx: AppContext, account_id: uuid.UUID) -> dict[str, int]:
    """Extension id -> how many of the account's browsers name it."""
    counts: dict[str, int] = {}
    for runtime in await _runtimes_naming(ctx, account_id, live_only=False):
        for extension_id in set(_named(runtime)):
            counts[extension_id] = counts.get(extension_id, 0) + 1
    return counts


# --- checks at a browser's create or update ------------------------------------------------------------


async def check_ids(ctx: AppContext, p: Principal, raw: Any) -> list[str] | None:
    """The ids a browser's `extensions` names, as they are kept: each one the caller's own (400
    `browser_extension.invalid_ids` for a malformed one, `duplicate_ids` for one named twice, 404
    `not_found` for one that is unknown or another account's)."""
    if raw is None:
        return None
    values = [str(v) for v in raw]
    malformed = [v for v in values if ids.parse_uuid(v) is None]
    if malformed:
        raise InvalidRequest(
            "Extension ids must be ids of uploaded extensions",
            code="browser_extension.invalid_ids",
            details={"extensionIds": malformed[:20]},
        )
    canonical = [str(ids.parse_uuid(v)) for v in values]
    twice = sorted({v for v in canonical if canonical.count(v) > 1})
    if twice:
        raise InvalidRequest(
            "An extension is named more than once",
            code="browser_extension.duplicate_ids",
            details={"extensionIds": twice},
        )
    if not canonical:
        return []
    async with ctx.db.read() as s:
        found = set(
            (
                await s.execute(
                    select(BrowserExtension.id).where(
                        BrowserExtension.account_id == p.account_id,
                        BrowserExtension.id.in_([uuid.UUID(v) for v in canonical]),
                    )
                )
            ).scalars()
        )
    missing = [v for v in canonical if uuid.UUID(v) not in found]
    if missing:
        raise NotFound(
            "Browser extension not found", code="browser_extension.not_found", details={"extensionIds": missing}
        )
    return canonical


# --- the unpacked copies a launch uses ------------------------------------------------------------------


def _cache_root(ctx: AppContext) -> Path:
    return (ctx.settings.data_dir / "extensions").resolve()


def _cache_dir(ctx: AppContext, row: BrowserExtension) -> Path:
    return _cache_root(ctx) / row.object_key.split("/", 1)[1]


async def unpacked_dirs(ctx: AppContext, account_id: uuid.UUID, extension_ids: list[str]) -> tuple[str, ...]:
    """Host directories of the named extensions, unpacked (once) from their kept objects; raises
    DriverError `browser_extension.not_found` when one was deleted since the browser named it."""
    wanted = [ids.parse_uuid(v) for v in extension_ids]
    async with ctx.db.read() as s:
        rows = {
            r.id: r
            for r in (
                await s.execute(
                    select(BrowserExtension).where(
                        BrowserExtension.account_id == account_id,
                        BrowserExtension.id.in_([w for w in wanted if w is not None]),
                    )
                )
            ).scalars()
        }
    dirs = []
    for raw, wanted_id in zip(extension_ids, wanted, strict=True):
        row = rows.get(wanted_id) if wanted_id is not None else None
        if row is None:
            raise DriverError(
                f"Browser extension {raw} no longer exists; update the browser's extensions",
                code="browser_extension.not_found",
            )
        unpacked = await _ensure_unpacked(ctx, row)
        # A package kept before a permission was refused (app/extensions/package.py) is not loaded either.
        if await asyncio.to_thread(_refused_in, unpacked):
            raise DriverError(
                f"Browser extension {raw} asks for a permission that is not allowed here (proxy); "
                "remove it from the browser's extensions",
                code="browser_extension.invalid_package",
            )
        dirs.append(str(unpacked))
    return tuple(dirs)


def _refused_in(unpacked: Path) -> bool:
    try:
        manifest = json.loads((unpacked / package.MANIFEST).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return True
    return not isinstance(manifest, dict) or bool(package.refused_permissions(manifest))


async def _ensure_unpacked(ctx: AppContext, row: BrowserExtension) -> Path:
    target = _cache_dir(ctx, row)
    if target.is_dir():
        return target
    root = _cache_root(ctx)
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".unpack-", dir=root))
    try:
        kept = work / "kept.zip"
        await _download(ctx, row.object_key, kept)
        unpacked = work / "unpacked"
        await asyncio.to_thread(unpacked.mkdir, mode=0o755)
        await asyncio.to_thread(package.unpack, kept, unpacked)
        with contextlib.suppress(OSError):  # another launch unpacked it first: theirs is the same
            await asyncio.to_thread(os.rename, unpacked, target)
    except (OSError, DomainError) as exc:
        raise DriverError(
            f"Browser extension {row.id} could not be unpacked: {exc}", code="runtime.launch_failed"
        ) from exc
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return target


async def _download(ctx: AppContext, key: str, target: Path) -> None:
    store = make_store(ctx.settings)
    with open(target, "wb") as out:  # noqa: ASYNC230 - small writes of chunks the store already has
        async for chunk in store.open(key):
            await asyncio.to_thread(out.write, chunk)


# --- create -------------------------------------------------------------------------------------------


# How a route receives an upload: stores the package's bytes under the key (at most `max_bytes`) and
# returns the other form fields; raises 400 naming a missing `file` part, 413 past the limit.
Receiver = Callable[[ObjectStore, str, int], Awaitable[dict[str, str]]]


async def _check_room(ctx: AppContext, p: Principal) -> None:
    async with ctx.db.read() as s:
        count = await s.scalar(
            select(func.count()).select_from(BrowserExtension).where(BrowserExtension.account_id == p.account_id)
        )
    if (count or 0) >= MAX_PER_ACCOUNT:
        raise InvalidRequest(
            f"An account keeps at most {MAX_PER_ACCOUNT} browser extensions; delete one first",
            code="browser_extension.too_many",
            details={"max": MAX_PER_ACCOUNT},
        )


def _check_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = raw.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRequest(
            "name must be 1 to 200 characters",
            details={
                "fields": [{"field": "name", "in": "body", "message": "1 to 200 characters", "type": "value_error"}]
            },
        )
    return name


async def upload(ctx: AppContext, p: Principal, receive: Receiver) -> BrowserExtension:
    """An upload (`file`, optional `name`): checked, kept, and its row."""
    await _check_room(ctx, p)
    store = make_store(ctx.settings)
    raw_key = new_key("uploads")
    try:
        fields = await receive(store, raw_key, package.MAX_PACKAGE_BYTES)
    except DomainError as exc:
        if exc.status == 413:
            raise package.over_limit(
                f"The package is larger than {package.MAX_PACKAGE_BYTES} bytes", "maxPackageBytes"
            ) from None
        if "`file` part is required" in exc.message or "multipart/form-data" in exc.message:
            raise DomainError(
                "Send the extension as multipart/form-data with a `file` part (.crx or .zip), or JSON with a `url`",
                code="browser_extension.file_required",
                details={"field": "file"},
            ) from None
        raise
    try:
        unknown = sorted(set(fields) - UPLOAD_FIELDS)
        if unknown:
            raise InvalidRequest(
                f"Unknown form fields: {', '.join(unknown)}",
                details={
                    "fields": [
                        {"field": f, "in": "body", "message": "unknown field", "type": "extra_forbidden"}
                        for f in unknown
                    ]
                },
            )
        name = _check_name(fields.get("name"))
        return await _keep(ctx, p, lambda target: _download(ctx, raw_key, target), name, source="upload")
    finally:
        await store.delete(raw_key)


async def import_url(ctx: AppContext, p: Principal, url: str, name: str | None) -> BrowserExtension:
    """A package fetched from `url` (a Chrome Web Store item's page, or a .crx/.zip address), through
    the same egress proxy the browsers use: it reaches only what a browser of this server may."""
    await _check_room(ctx, p)
    name = _check_name(name)
    fetch_url, store_id = _import_target(url)

    async def fetch(target: Path) -> None:
        await _fetch(ctx, fetch_url, target)

    row = await _keep(ctx, p, fetch, name, source="url", source_url=url, expected_id=store_id)
    return row


def _import_target(url: str) -> tuple[str, str | None]:
    def refuse(why: str) -> DomainError:
        return InvalidRequest(f"url {why}", code="browser_extension.import_url_invalid", details={"url": url[:2048]})

    if len(url) > 2048:
        raise refuse("is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        raise refuse("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("must be an http or https address of a .crx or .zip, or a Chrome Web Store item")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    if parts.hostname in STORE_HOSTS:
        segments = [s for s in parts.path.split("/") if s]
        store_id = next((s for s in reversed(segments) if STORE_IDS.match(s)), None)
        if store_id is None or "detail" not in segments:
            raise refuse("names no Chrome Web Store item (…/detail/<name>/<32-letter id>)")
        return STORE_DOWNLOAD.format(id=quote(store_id)), store_id
    return url, None


async def _fetch(ctx: AppContext, url: str, target: Path) -> None:
    proxy = getattr(ctx.driver, "proxy_url", None)

    def failed(why: str) -> DomainError:
        return InvalidRequest(
            f"The extension could not be fetched: {why}", code="browser_extension.import_failed", details={"url": url}
        )

    try:
        async with (
            httpx.AsyncClient(
                proxy=proxy,
                timeout=IMPORT_TIMEOUT_SECONDS,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                trust_env=False,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise failed(f"the server answered {response.status_code}")
            total = 0
            with open(target, "wb") as out:  # noqa: ASYNC230 - chunks as they arrive
                async for chunk in response.aiter_bytes(1024 * 1024):
                    total += len(chunk)
                    if total > package.MAX_PACKAGE_BYTES:
                        raise package.over_limit(
                            f"The package is larger than {package.MAX_PACKAGE_BYTES} bytes", "maxPackageBytes"
                        )
                    await asyncio.to_thread(out.write, chunk)
    except httpx.TooManyRedirects:
        raise failed(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise failed(f"no answer within {IMPORT_TIMEOUT_SECONDS:g}s") from None
    except httpx.HTTPError as exc:
        raise failed(str(exc) or type(exc).__name__) from None


async def _keep(
    ctx: AppContext,
    p: Principal,
    fill,
    name: str | None,
    *,
    source: str,
    source_url: str | None = None,
    expected_id: str | None = None,
) -> BrowserExtension:
    root = _cache_root(ctx)
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".check-", dir=root))
    store = make_store(ctx.settings)
    key = None
    try:
        raw = work / "package"
        await fill(raw)
        checked = await asyncio.to_thread(package.inspect, raw)
        if checked.public_key is None:
            checked.public_key = await asyncio.to_thread(package.new_public_key)
        chrome_id = package.extension_id(checked.public_key)
        if expected_id is not None and chrome_id != expected_id:
            raise InvalidRequest(
                f"The package's extension id is {chrome_id}, not the {expected_id} its URL names",
                code="browser_extension.identity_mismatch",
                details={"expected": expected_id, "actual": chrome_id},
            )
        digest, size = await asyncio.to_thread(_digest, raw)
        kept = work / "kept.zip"
        await asyncio.to_thread(package.normalize, checked, raw, kept)
        key = new_key("extensions")
        await store.put_file(key, kept)
        now = clock.now()
        row = BrowserExtension(
            id=ids.new_id(),
            account_id=p.account_id,
            name=name or checked.name,
            version=checked.version,
            manifest_version=checked.manifest_version,
            chrome_extension_id=chrome_id,
            format=checked.format,
            source=source,
            source_url=source_url,
            object_key=key,
            content_hash=digest,
            size_bytes=size,
            permissions={"permissions": checked.permissions, "hostPermissions": checked.host_permissions},
            created_at=now,
            updated_at=now,
        )
        async with ctx.db.transaction() as s:
            s.add(row)
        key = None
        return row
    finally:
        if key is not None:
            await store.delete(key)
        await asyncio.to_thread(shutil.rmtree, work, True)


def _digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# --- update, delete -------------------------------------------------------------------------------------


async def rename(ctx: AppContext, row: BrowserExtension, name: str) -> BrowserExtension:
    async with ctx.db.transaction() as s:
        row = await s.merge(row)
        row.name = name
        row.updated_at = clock.now()
    return row


async def delete(ctx: AppContext, row: BrowserExtension) -> uuid.UUID:
    """Remove the extension, its kept object and unpacked copy; refused (409 `browser_extension.in_use`)
    while a running browser loads it. Browsers that are not running and name it fail their next start
    with `browser_extension.not_found` until their extensions are updated."""
    using = [r for r in await _runtimes_naming(ctx, row.account_id, live_only=True) if str(row.id) in _named(r)]
    if using:
        raise Conflict(
            "A running browser uses this extension; stop it first",
            code="browser_extension.in_use",
            details={"extensionId": str(row.id), "browserIds": [str(r.id) for r in using]},
        )
    async with ctx.db.transaction() as s:
        gone = await s.get(BrowserExtension, row.id)
        if gone is None:
            raise not_found(row.id)
        await s.delete(gone)
    await make_store(ctx.settings).delete(row.object_key)
    await asyncio.to_thread(shutil.rmtree, _cache_dir(ctx, row), True)
    return row.id

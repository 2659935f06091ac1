"""The secrets vault: `login` and `value` secrets at paths of an account, every write a new version,
fields sealed under the server key (app/vault/crypto.py) and read back only by `reveal` (people: API
keys) and `login_for` (a task filling a login into a page whose origin the secret allows). Every reveal,
fill and write is an audit record (`secret_audit`) that never holds a value; nothing here logs a value
or puts one in an event.

Who acts is an `actor` dict: `{"kind": "api_key", "keyId": ...}` for a person's API key (the only kind
that may reveal), `{"kind": "task", "taskId": ..., ...}` for a task (see `person()`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from app.core.paging import PageParams, encode_cursor, fetch_by_id, split_page
from app.vault import checks, totp
from app.vault.crypto import VaultBox
from app.vault.models import SEALED_FIELDS, VaultAudit, VaultSecret, VaultSecretVersion

TYPES = ("login", "value")
# Fields a login secret may hold (label and notes: any type; a value secret holds `value`).
LOGIN_FIELDS = ("username", "password", "totp")
MAX_REF = 600
# A folder listing reads this many paths at most under one prefix.
MAX_LISTED = 20000
UNREADABLE = "sealed under another server key (BCTRL_SECRET_KEY changed); write the secret again"


class Forbidden(DomainError):
    status = 403
    code = "secrets.reveal_forbidden"


class PreconditionFailed(DomainError):
    status = 412
    code = "secrets.version_mismatch"


def not_found(ref: object) -> NotFound:
    return NotFound("Secret not found", code="secrets.not_found", details={"secret": str(ref)[:MAX_REF]})


def person(p: Principal) -> dict[str, Any]:
    """The actor of a request made with an API key."""
    return {"kind": "api_key", "keyId": str(p.key_id)}


def _created_by(actor: dict[str, Any]) -> str:
    if actor.get("kind") == "api_key":
        return f"key:{actor.get('keyId')}"
    kind = str(actor.get("kind") or "system")
    return f"{kind}:{actor.get('taskId') or actor.get('id') or ''}".rstrip(":")[:200]


def _box(ctx: AppContext) -> VaultBox:
    return VaultBox(ctx.signing_key)


def has(row: VaultSecret | VaultSecretVersion, name: str) -> bool:
    return getattr(row, f"{name}_sealed") is not None


# --- results ---


@dataclass(frozen=True)
class SecretSpec:
    path: str
    type: str
    label: str | None = None
    notes: str | None = None
    origins: list[str] | None = None
    password: str | None = None
    totp: str | None = None
    username: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class LoginFill:
    """What a task types into a page: never logged, never in an event."""

    username: str | None
    password: str | None
    totp_code: str | None

    def __repr__(self) -> str:  # a stray log line shows no value
        return f"LoginFill(username={'set' if self.username else None}, password=***, totp_code=***)"


@dataclass(frozen=True)
class Revealed:
    secret: VaultSecret
    version: int
    values: dict[str, str | None] = field(repr=False)


# --- checks shared by create and update ---


def _check_shape(kind: str, state: dict[str, Any]) -> None:
    """A secret's fields after a write fit its type: a `value` secret holds a value (and no login fields),
    a `login` holds a username, a password or a TOTP seed (and no value)."""
    if kind == "value":
        foreign = [f for f in (*LOGIN_FIELDS, "origins") if state.get(f)]
        if foreign:
            raise checks.invalid("secrets.invalid", foreign[0], "a value secret holds value, label and notes only")
        if not state.get("value"):
            raise checks.invalid("secrets.field_empty", "value", "a value secret needs a non-empty value")
    else:
        if state.get("value"):
            raise checks.invalid("secrets.invalid", "value", "a login holds username, password, totp and origins")
        if not any(state.get(f) for f in LOGIN_FIELDS):
            raise checks.invalid("secrets.field_empty", "password", "a login needs a username, password or totp")


def _checked_field(name: str, value: Any) -> Any:
    if name == "origins":
        return checks.origins(value)
    checked = checks.field(name, value)
    if name == "totp" and checked is not None:
        try:
            totp.parse(checked)
        except ValueError as e:
            raise checks.invalid("secrets.invalid", "totp", str(e)) from None
    return checked


def _audit(s, row: VaultSecret, action: str, actor: dict[str, Any], **detail: Any) -> None:
    s.add(
        VaultAudit(
            id=ids.new_id(),
            account_id=row.account_id,
            secret_id=row.id,
            path=row.path,
            version=row.version,
            action=action,
            actor=actor,
            detail=detail,
            created_at=clock.now(),
        )
    )


def _version_of(row: VaultSecret, actor: dict[str, Any]) -> VaultSecretVersion:
    return VaultSecretVersion(
        id=ids.new_id(),
        secret_id=row.id,
        account_id=row.account_id,
        version=row.version,
        created_by=_created_by(actor),
        label=row.label,
        username=row.username,
        origins=list(row.origins),
        **{f"{n}_sealed": getattr(row, f"{n}_sealed") for n in SEALED_FIELDS},
        created_at=row.updated_at,
    )


def _conflict(path: str) -> Conflict:
    return Conflict(f"A secret exists at {path!r}", code="secrets.conflict", details={"path": path})


# --- create, read, list ---


async def create(ctx: AppContext, p: Principal, spec: SecretSpec, actor: dict[str, Any] | None = None) -> VaultSecret:
    actor = actor or person(p)
    path = checks.path(spec.path)
    if spec.type not in TYPES:
        raise checks.invalid("secrets.invalid", "type", "login or value")
    state = {name: _checked_field(name, getattr(spec, name)) for name in ("label", "origins", *SEALED_FIELDS)}
    state["username"] = _checked_field("username", spec.username)
    _check_shape(spec.type, state)
    now, new_id = clock.now(), ids.new_id()
    box = _box(ctx)
    row = VaultSecret(
        id=new_id,
        account_id=p.account_id,
        path=path,
        type=spec.type,
        version=1,
        label=state["label"],
        username=state["username"],
        origins=state["origins"],
        **{f"{n}_sealed": box.seal(new_id, n, state[n]) if state[n] is not None else None for n in SEALED_FIELDS},
        last_used_at=None,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            taken = await s.scalar(
                select(func.count())
                .select_from(VaultSecret)
                .where(VaultSecret.account_id == p.account_id, VaultSecret.path == path)
            )
            if taken:
                raise _conflict(path)
            s.add(row)
            await s.flush()
            s.add(_version_of(row, actor))
            _audit(s, row, "create", actor, fields=_set_fields(row))
    except IntegrityError:
        raise _conflict(path) from None
    return row


def _set_fields(row: VaultSecret | VaultSecretVersion) -> list[str]:
    names = [n for n in SEALED_FIELDS if has(row, n)]
    return sorted([*names, "username"] if row.username else names)


async def resolve(ctx: AppContext, account_id: uuid.UUID, ref: str) -> VaultSecret:
    """The account's secret by id or by path; another account's, an unknown one and a malformed
    reference are all 404 `secrets.not_found`."""
    if not isinstance(ref, str) or not ref or len(ref) > MAX_REF:
        raise not_found(ref)
    row_id = ids.parse_uuid(ref)
    async with ctx.db.read() as s:
        row = await s.get(VaultSecret, row_id) if row_id is not None else None
        if row is None or row.account_id != account_id:
            stmt = select(VaultSecret).where(VaultSecret.account_id == account_id, VaultSecret.path == ref)
            row = (await s.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise not_found(ref)
    return row


async def get(ctx: AppContext, p: Principal, ref: str) -> VaultSecret:
    return await resolve(ctx, p.account_id, ref)


@dataclass(frozen=True)
class Listing:
    rows: list[VaultSecret]
    folders: list[str]
    cursor: str | None


def _listed(account_id: uuid.UUID, prefix: str | None, kind: str | None):
    stmt = select(VaultSecret).where(VaultSecret.account_id == account_id)
    if prefix:
        stmt = stmt.where(VaultSecret.path.startswith(prefix, autoescape=True))
    if kind:
        stmt = stmt.where(VaultSecret.type == kind)
    return stmt


async def list_secrets(
    ctx: AppContext,
    account_id: uuid.UUID,
    page: PageParams,
    *,
    prefix: str | None = None,
    delimiter: str | None = None,
    kind: str | None = None,
    newest_first: bool = True,
) -> Listing:
    """The account's secrets (never a value) whose path starts with `prefix`, by creation. With
    `delimiter` ("/"), secrets deeper than the next "/" after the prefix are grouped into folders
    (`prefix + segment + "/"`), each in the place of its first secret, counting toward the limit."""
    prefix = checks.prefix(prefix)
    if delimiter not in (None, "/"):
        raise checks.invalid("secrets.invalid", "delimiter", "only / is offered", where="query")
    if kind is not None and kind not in TYPES:
        raise checks.invalid("secrets.invalid", "type", "login or value", where="query")
    stmt = _listed(account_id, prefix, kind)
    if delimiter is None:
        rows, cursor = await fetch_by_id(ctx.db, stmt, VaultSecret.id, page, newest_first=newest_first)
        return Listing(rows, [], cursor)

    order = VaultSecret.id.desc() if newest_first else VaultSecret.id
    async with ctx.db.read() as s:
        pairs = (
            await s.execute(stmt.with_only_columns(VaultSecret.id, VaultSecret.path).order_by(order).limit(MAX_LISTED))
        ).all()
    base = prefix or ""
    entries: list[tuple[uuid.UUID, str | None]] = []  # (position, folder or None for the secret itself)
    seen: set[str] = set()
    for row_id, path in pairs:
        rest = path[len(base) :]
        if "/" in rest:
            folder = base + rest[: rest.index("/") + 1]
            if folder in seen:
                continue
            seen.add(folder)
            entries.append((row_id, folder))
        else:
            entries.append((row_id, None))
    after = ids.parse_uuid(page.after) if isinstance(page.after, str) else None
    if after is not None:
        entries = [e for e in entries if (e[0] < after if newest_first else e[0] > after)]
    chosen = entries[: page.limit + 1]
    cursor = None
    if len(chosen) > page.limit:
        chosen = chosen[: page.limit]
        cursor = encode_cursor(str(chosen[-1][0]))
    wanted = [position for position, folder in chosen if folder is None]
    by_id: dict[uuid.UUID, VaultSecret] = {}
    if wanted:
        async with ctx.db.read() as s:
            found = (await s.execute(select(VaultSecret).where(VaultSecret.id.in_(wanted)))).scalars()
            by_id = {r.id: r for r in found}
    rows = [by_id[position] for position in wanted if position in by_id]
    folders = [folder for _, folder in chosen if folder is not None]
    return Listing(rows, folders, cursor)


async def list_versions(
    ctx: AppContext, row: VaultSecret, page: PageParams, *, newest_first: bool = True
) -> tuple[list[VaultSecretVersion], str | None]:
    stmt = select(VaultSecretVersion).where(VaultSecretVersion.secret_id == row.id)
    if isinstance(page.after, int) and page.after < 2**31:
        col = VaultSecretVersion.version
        stmt = stmt.where(col < page.after if newest_first else col > page.after)
    elif page.after is not None:
        raise checks.invalid("secrets.cursor_invalid", "cursor", "not a nextCursor of this list", where="query")
    order = VaultSecretVersion.version.desc() if newest_first else VaultSecretVersion.version
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt.order_by(order).limit(page.limit + 1))).scalars())
    return split_page(rows, page, lambda v: v.version)


# --- writes ---


def _check_match(row: VaultSecret, if_match: str | None) -> None:
    """`If-Match` names the current version (`"3"`, `3`, `W/"3"`) or any (`*`); 412 otherwise."""
    if if_match is None:
        return
    wanted = [t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")]
    if "*" in wanted:
        return
    if str(row.version) not in wanted:
        raise PreconditionFailed(
            f"The secret is at version {row.version}, not {if_match}",
            details={"currentVersion": row.version, "ifMatch": if_match[:100]},
        )


def check_if_match(if_match: str | None) -> None:
    """A malformed `If-Match` (not versions, not `*`) is 400 before anything is read."""
    if if_match is None:
        return
    for t in if_match.split(","):
        t = t.strip().removeprefix("W/").strip('"')
        if t != "*" and not (t.isdigit() and len(t) < 10):
            raise checks.invalid("secrets.invalid", "If-Match", 'a version, for example "3", or *', where="header")


async def _locked(s, row: VaultSecret) -> VaultSecret:
    current = await s.get(VaultSecret, row.id, with_for_update=True)
    if current is None:
        raise not_found(row.id)
    return current


async def update(
    ctx: AppContext,
    row: VaultSecret,
    changes: dict[str, Any],
    actor: dict[str, Any],
    *,
    from_version: int | None = None,
    if_match: str | None = None,
) -> VaultSecret:
    """A new version: the fields in `changes` set (None clears one), the others kept; or, with
    `from_version` alone, the values (username, password, totp, value, notes) of that version back
    (label and origins stay as they are)."""
    check_if_match(if_match)
    if from_version is not None and changes:
        raise checks.invalid("secrets.invalid", "fromVersion", "send fromVersion alone")
    if from_version is None and not changes:
        raise checks.invalid("secrets.invalid", "body", "give at least one field to change")
    checked = {name: _checked_field(name, value) for name, value in changes.items()}
    box = _box(ctx)
    async with ctx.db.transaction() as s:
        row = await _locked(s, row)
        _check_match(row, if_match)
        if from_version is not None:
            old = (
                await s.execute(
                    select(VaultSecretVersion).where(
                        VaultSecretVersion.secret_id == row.id, VaultSecretVersion.version == from_version
                    )
                )
            ).scalar_one_or_none()
            if old is None:
                raise NotFound(
                    f"The secret has no version {from_version}",
                    code="secrets.version_not_found",
                    details={"version": from_version, "currentVersion": row.version},
                )
            row.username = old.username
            for n in SEALED_FIELDS:
                setattr(row, f"{n}_sealed", getattr(old, f"{n}_sealed"))
            changed = ["fromVersion"]
        else:
            state = {
                "username": row.username,
                "origins": list(row.origins),
                **{n: has(row, n) for n in SEALED_FIELDS},
            }
            state.update({k: v for k, v in checked.items()})
            try:
                _check_shape(row.type, state)
            except InvalidRequest as e:
                # What fits depends on the secret's type and its other fields: a conflict with its state.
                raise Conflict(e.message, code="secrets.conflict", details={**e.details, "type": row.type}) from None
            for name, value in checked.items():
                if name in SEALED_FIELDS:
                    setattr(row, f"{name}_sealed", box.seal(row.id, name, value) if value is not None else None)
                else:
                    setattr(row, name, value)
            changed = sorted(checked)
        row.version += 1
        row.updated_at = clock.now()
        s.add(_version_of(row, actor))
        _audit(s, row, "update", actor, fields=changed)
    return row


async def delete(
    ctx: AppContext, row: VaultSecret, actor: dict[str, Any], *, if_match: str | None = None
) -> VaultSecret:
    """The secret and all its versions; its audit trail stays."""
    check_if_match(if_match)
    async with ctx.db.transaction() as s:
        row = await _locked(s, row)
        _check_match(row, if_match)
        _audit(s, row, "delete", actor)
        await s.execute(sa_delete(VaultSecretVersion).where(VaultSecretVersion.secret_id == row.id))
        await s.delete(row)
    return row


# --- reading values ---


def _open(box: VaultBox, row: VaultSecret | VaultSecretVersion, secret_id: uuid.UUID, name: str) -> str | None:
    sealed = getattr(row, f"{name}_sealed")
    if sealed is None:
        return None
    value = box.open(secret_id, name, sealed)
    if value is None:
        raise Conflict(f"{name}: {UNREADABLE}", code="secrets.unreadable", details={"field": name})
    return value


async def reveal(ctx: AppContext, row: VaultSecret, actor: dict[str, Any], version: int | None = None) -> Revealed:
    """The values of the current version (or of `version`): people only (an API key's actor); anything
    else is 403 `secrets.reveal_forbidden`. Audited (what was revealed, never the value)."""
    if actor.get("kind") != "api_key":
        raise Forbidden("Only people (API keys) may reveal a secret's values; tasks and views may not")
    box = _box(ctx)
    async with ctx.db.transaction() as s:
        row = await _locked(s, row)
        source: VaultSecret | VaultSecretVersion = row
        if version is not None and version != row.version:
            source = (
                await s.execute(
                    select(VaultSecretVersion).where(
                        VaultSecretVersion.secret_id == row.id, VaultSecretVersion.version == version
                    )
                )
            ).scalar_one_or_none()
            if source is None:
                raise NotFound(
                    f"The secret has no version {version}",
                    code="secrets.version_not_found",
                    details={"version": version, "currentVersion": row.version},
                )
        values: dict[str, str | None] = {n: _open(box, source, row.id, n) for n in SEALED_FIELDS}
        values["username"] = source.username
        shown = version if version is not None else row.version
        row.last_used_at = clock.now()
        _audit(s, row, "reveal", actor, version=shown, fields=_set_fields(source))
    return Revealed(secret=row, version=shown, values=values)


def origin_not_allowed(origin: str, row: VaultSecret) -> DomainError:
    return DomainError(
        f"The secret {row.path!r} may not be filled into {origin[:200]!r}",
        code="secrets.origin_not_allowed",
        status=403,
        details={"origin": origin[:300], "path": row.path, "allowedOrigins": list(row.origins)},
    )


async def login_for(ctx: AppContext, secret: VaultSecret, origin: str, actor: dict[str, Any]) -> LoginFill:
    """What a task may type into a page of `origin` (the page's URL or origin): the username, the
    password and, when the login has a TOTP seed, the code of now. The origin must be one the secret
    allows (scheme, host and port exactly, or a subdomain for `*.host`): 403 `secrets.origin_not_allowed`
    (or `secrets.no_origins` when it allows none) otherwise. Filled and refused attempts are audited."""
    box = _box(ctx)
    async with ctx.db.read() as s:
        row = await s.get(VaultSecret, secret.id)
    if row is None or row.account_id != secret.account_id:
        raise not_found(secret.id)
    if row.type != "login":
        raise checks.invalid("secrets.invalid", "secret", f"{row.path!r} is a value secret, not a login")
    page = checks.page_origin(origin) if isinstance(origin, str) else None
    allowed = page is not None and any(checks.origin_allows(rule, page) for rule in row.origins)
    if not allowed:
        async with ctx.db.transaction() as s:
            _audit(s, row, "fill_refused", actor, origin=str(origin)[:300])
        if not row.origins:
            raise DomainError(
                f"The login {row.path!r} allows no origins: set its origins first",
                code="secrets.no_origins",
                status=403,
                details={"path": row.path},
            )
        raise origin_not_allowed(str(origin), row)
    password = _open(box, row, row.id, "password")
    seed = _open(box, row, row.id, "totp")
    code = totp.code_now(seed) if seed else None
    async with ctx.db.transaction() as s:
        current = await s.get(VaultSecret, row.id)
        if current is not None:
            current.last_used_at = clock.now()
        _audit(s, row, "fill", actor, origin=f"{page[0]}://{page[1]}:{page[2]}", fields=_set_fields(row))
    return LoginFill(username=row.username, password=password, totp_code=code)


REFERENCE_FIELDS = ("value", "password", "totp", "notes", "username")


def parse_reference(ref: str) -> tuple[str, str | None, int | None]:
    """(path or id, field, version) of `secret:<path>[#field][@version]` (the `secret:` prefix optional);
    400 `secrets.reference_invalid` when it is not one."""
    text = ref.removeprefix("secret:") if isinstance(ref, str) else ""
    version: int | None = None
    head, at, tail = text.rpartition("@")
    if at and tail.isdigit() and 0 < len(tail) < 10:
        text, version = head, int(tail)
    text, hash_, name = text.partition("#")
    if not text or (hash_ and name not in REFERENCE_FIELDS) or len(text) > MAX_REF:
        raise checks.invalid(
            "secrets.reference_invalid",
            "secret",
            f"a reference such as secret:prod/github/bot#password@2 (fields: {', '.join(REFERENCE_FIELDS)})",
        )
    return text, (name or None), version


async def signing_value(ctx: AppContext, account_id: uuid.UUID, ref: str, actor: dict[str, Any]) -> str:
    """The value a tool's calls are signed with, from a `secret:<path>[#field][@version]` reference
    (field default: value for a value secret, password for a login). The server uses it; it is never
    shown to a model. 404 `secrets.not_found` / `secrets.version_not_found`, 400 `secrets.field_empty`
    when the field is not set, 409 `secrets.unreadable`; audited as action "sign" (never the value)."""
    target, name, version = parse_reference(ref)
    row = await resolve(ctx, account_id, target)
    name = name or ("value" if row.type == "value" else "password")
    box = _box(ctx)
    async with ctx.db.transaction() as s:
        row = await _locked(s, row)
        source: VaultSecret | VaultSecretVersion = row
        if version is not None and version != row.version:
            stmt = select(VaultSecretVersion).where(
                VaultSecretVersion.secret_id == row.id, VaultSecretVersion.version == version
            )
            found = (await s.execute(stmt)).scalar_one_or_none()
            if found is None:
                raise NotFound(
                    f"The secret has no version {version}",
                    code="secrets.version_not_found",
                    details={"version": version, "currentVersion": row.version},
                )
            source = found
        value = source.username if name == "username" else _open(box, source, row.id, name)
        if not value:
            raise checks.invalid("secrets.field_empty", "secret", f"{row.path!r} has no {name} set")
        row.last_used_at = clock.now()
        _audit(s, row, "sign", actor, field=name, version=version or row.version)
    return value


async def list_for_agent(ctx: AppContext, account_id: uuid.UUID, prefix: str | None) -> list[dict[str, Any]]:
    """What an agent may know of the account's secrets (under `prefix`): path, type, label, origins and
    which fields are set; never a value."""
    prefix = checks.prefix(prefix)
    stmt = _listed(account_id, prefix, None).order_by(VaultSecret.path).limit(200)
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt)).scalars())
    return [
        {
            "path": r.path,
            "type": r.type,
            "label": r.label,
            "origins": list(r.origins),
            "hasUsername": bool(r.username),
            "hasPassword": has(r, "password"),
            "hasTotp": has(r, "totp"),
            "hasValue": has(r, "value"),
        }
        for r in rows
    ]


__all__ = [
    "Forbidden",
    "InvalidRequest",
    "Listing",
    "LoginFill",
    "Revealed",
    "SecretSpec",
    "create",
    "delete",
    "get",
    "list_for_agent",
    "list_secrets",
    "list_versions",
    "parse_reference",
    "signing_value",
    "login_for",
    "resolve",
    "reveal",
    "update",
]

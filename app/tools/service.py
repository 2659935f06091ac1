"""Tools: the built-in catalogue (`catalog.py`) and the account's custom webhook tools, one space each.

`resolve` turns what an agent version names (a built-in's name, a custom tool's id or name) into a
`ResolvedTool` the task runner and the tool executors use. `check_refs` is what an agent's create and
update run over its `tools`: an unknown name is 400 `tool.not_found`, a built-in this server does not
offer 400 `tool.unavailable`.

A custom tool is a webhook: the server POSTs the call (signed the standardwebhooks way) to `url` and
waits at most `timeout_ms` for a JSON answer valid against `output_schema`. Its signing secret is
generated at create and kept sealed under the server key (never returned: the contract has no field
for it); when the tool names `authSecret` (a vault reference, `secret:<path>[#field]`), the calls are
signed with that secret's value instead, so the receiver can hold the key it verifies with."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.ai.secrets import SecretBox
from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound, the_one_named
from app.core.paging import PageParams, encode_cursor
from app.spaces.models import Space
from app.tools.catalog import BUILTIN, CATALOG_DATE, REFUSED, BuiltinTool, is_builtin_name
from app.tools.models import CustomTool
from app.webhooks import signing

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
# A vault reference: secret:<path or id>[#field][@version]; segments as the vault spells them, none
# starting with a dot (so never `..`).
_SEGMENT = r"[A-Za-z0-9_@+=,~-][A-Za-z0-9._@+=,~-]{0,127}"
SECRET_REF_PATTERN = rf"^secret:{_SEGMENT}(?:/{_SEGMENT}){{0,15}}(?:#(?:password|totp|value|notes|username))?$"
# The longest reference the pattern spells (the vault's own limits are checked when the tool runs).
SECRET_REF_MAX = 2100
# A webhook's URL: http or https, a host name or an IPv4 address, an optional port, no credentials.
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = rf"^https?://{_HOST}(?::{_PORT})?(?:[/?#][!-~]*)?$"
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 300_000
MIN_TIMEOUT_MS = 100
RUNTIME_TYPES = ("browser",)
UNREADABLE = "The tool's signing secret was sealed under another server key (BCTRL_SECRET_KEY changed)"


@dataclass
class ResolvedTool:
    """A tool as a task uses it: what the model is shown and how a call is run."""

    kind: str  # "builtin" | "webhook"
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    needs_browser: bool
    custom: CustomTool | None = None


@dataclass
class WebhookSpec:
    """A custom webhook tool to keep (create) or its new values (update: None = unchanged)."""

    name: str | None = None
    description: str | None = None
    url: str | None = None
    timeout_ms: int | None = None
    auth_secret: str | None = None
    auth_secret_given: bool = False
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    runtime_types: list[str] | None = None


# --- errors ---


def tool_not_found(ref: object) -> NotFound:
    return NotFound(f"Tool not found: {str(ref)[:200]}", code="tool.not_found", details={"tool": str(ref)[:200]})


def tool_unavailable(name: str, field: str = "tools") -> InvalidRequest:
    why = REFUSED[name]
    return InvalidRequest(
        f"The built-in tool {name} is not available on this server: {why}",
        code="tool.unavailable",
        details={"tool": name, "fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}]},
    )


def _invalid(field: str, message: str, code: str = "request.invalid") -> InvalidRequest:
    return InvalidRequest(
        f"{field}: {message}",
        code=code,
        details={"fields": [{"field": field, "in": "body", "message": message, "type": "invalid"}]},
    )


def builtin_immutable(name: str) -> DomainError:
    """403: the contract's delete answers no 409, and a built-in is refused whatever its state."""
    return DomainError(
        f"{name} is a built-in tool: it cannot be changed or deleted",
        code="tool.builtin_immutable",
        status=403,
        details={"tool": name},
    )


# --- resolving ---


def of_builtin(tool: BuiltinTool) -> ResolvedTool:
    return ResolvedTool(
        kind="builtin",
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        needs_browser=tool.needs_browser,
    )


def of_custom(row: CustomTool) -> ResolvedTool:
    return ResolvedTool(
        kind=row.kind,
        name=row.name,
        description=row.description,
        input_schema=row.input_schema,
        output_schema=row.output_schema,
        needs_browser=False,
        custom=row,
    )


async def _custom(ctx: AppContext, account_id: uuid.UUID, ref: str, space_id: uuid.UUID | None) -> CustomTool:
    """A live custom tool by id, or by name (in `space_id`, else across the account's spaces)."""
    row_id = ids.parse_uuid(ref)
    async with ctx.db.read() as s:
        if row_id is not None:
            row = await s.get(CustomTool, row_id)
            if (
                row is not None
                and row.account_id == account_id
                and row.archived_at is None
                and (space_id is None or row.space_id == space_id)
            ):
                return row
        stmt = select(CustomTool).where(
            CustomTool.account_id == account_id, CustomTool.name == ref, CustomTool.archived_at.is_(None)
        )
        if space_id is not None:
            stmt = stmt.where(CustomTool.space_id == space_id)
        found = list((await s.execute(stmt.limit(2))).scalars())
    return the_one_named(found, ref, "tool", tool_not_found(ref))


async def resolve(
    ctx: AppContext, account_id: uuid.UUID, ref: str, *, space_id: uuid.UUID | None = None
) -> ResolvedTool:
    """A built-in's name or a live custom tool's id or name (within `space_id` when given): 404
    `tool.not_found`; a built-in this server does not offer is 400 `tool.unavailable`."""
    if ref in BUILTIN:
        return of_builtin(BUILTIN[ref])
    if ref in REFUSED:
        raise tool_unavailable(ref)
    return of_custom(await _custom(ctx, account_id, ref, space_id))


async def check_refs(ctx: AppContext, account_id: uuid.UUID, space_id: uuid.UUID, refs: list[str]) -> list[str]:
    """What an agent version may name, checked: each a built-in offered here or a custom tool of the
    agent's space (by id or name), each once. 400 `tool.not_found` (not 404: it is the body that is
    wrong) or `tool.unavailable`. Returns the refs as given."""
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        if ref in seen:
            raise _invalid(f"tools[{i}]", f"{ref} is named more than once")
        seen.add(ref)
        if ref in REFUSED:
            raise tool_unavailable(ref, f"tools[{i}]")
        if ref in BUILTIN:
            continue
        try:
            await _custom(ctx, account_id, ref, space_id)
        except NotFound:
            raise InvalidRequest(
                f"tools[{i}]: no built-in tool and no tool of the agent's space is named {ref[:200]!r}",
                code="tool.not_found",
                details={
                    "tool": ref[:200],
                    "fields": [{"field": f"tools[{i}]", "in": "body", "message": "unknown tool", "type": "invalid"}],
                },
            ) from None
    return list(refs)


# --- custom tools: checks ---


def check_schema(field: str, schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise _invalid(field, "a JSON Schema object", "tool.schema_invalid")
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise _invalid(field, f"not a valid JSON Schema: {exc.message}", "tool.schema_invalid") from None
    if field == "inputSchema" and schema.get("type", "object") != "object":
        raise _invalid(
            field, 'a tool takes a JSON object (the model\'s arguments): "type" must be "object"', "tool.schema_invalid"
        )
    return schema


def check_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2048 or not re.fullmatch(URL_PATTERN, url):
        why = "an http or https URL with a host (a name or an IPv4 address), no credentials, at most 2048 characters"
        raise _invalid("implementation.url", why)
    return url


def check_auth_secret(ref: Any) -> str | None:
    if ref is None:
        return None
    if not isinstance(ref, str) or len(ref) > SECRET_REF_MAX or not re.fullmatch(SECRET_REF_PATTERN, ref):
        raise _invalid(
            "implementation.authSecret",
            "a vault reference such as secret:webhooks/crm#value (secret:<path>[#field][@version])",
        )
    return ref


def check_timeout(value: Any) -> int:
    if value is None:
        return DEFAULT_TIMEOUT_MS
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_TIMEOUT_MS <= value <= MAX_TIMEOUT_MS:
        raise _invalid("implementation.timeoutMs", f"milliseconds from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}")
    return value


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise _invalid(
            "name",
            "1 to 64 letters, digits, _ or -, starting with a letter (built-in names have a dot)",
            "tool.name_invalid",
        )
    return name


# --- custom tools: the service ---


def name_conflict(name: str) -> Conflict:
    return Conflict(
        f"A tool named {name!r} already exists in this space", code="tool.name_conflict", details={"name": name}
    )


def signing_secret(ctx: AppContext, row: CustomTool) -> str:
    """The tool's own signing secret (standardwebhooks `whsec_...`), opened. 409 when the server key changed."""
    plain = SecretBox(ctx.signing_key).open(row.signing_secret_sealed)
    if plain is None:
        raise Conflict(UNREADABLE, code="tool.signing_secret_unreadable", details={"toolId": str(row.id)})
    return plain


async def create(ctx: AppContext, p: Principal, space: Space, spec: WebhookSpec) -> CustomTool:
    name = check_name(spec.name)
    if is_builtin_name(name):
        raise name_conflict(name)
    now = clock.now()
    row = CustomTool(
        id=ids.new_id(),
        account_id=p.account_id,
        space_id=space.id,
        name=name,
        description=spec.description or "",
        kind="webhook",
        url=check_url(spec.url),
        timeout_ms=check_timeout(spec.timeout_ms),
        auth_secret=check_auth_secret(spec.auth_secret),
        signing_secret_sealed=SecretBox(ctx.signing_key).seal(signing.new_secret(32)),
        input_schema=check_schema("inputSchema", spec.input_schema),
        output_schema=check_schema("outputSchema", spec.output_schema),
        runtime_types=list(spec.runtime_types or RUNTIME_TYPES),
        revision_id=ids.new_id(),
        archived_at=None,
        created_at=now,
        updated_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            taken = await s.execute(
                select(CustomTool.id).where(
                    CustomTool.space_id == space.id, CustomTool.name == name, CustomTool.archived_at.is_(None)
                )
            )
            if taken.first() is not None:
                raise name_conflict(name)
            s.add(row)
    except IntegrityError:
        raise name_conflict(name) from None
    return row


async def get(ctx: AppContext, p: Principal, ref: str, space: Space | None) -> BuiltinTool | CustomTool:
    """A built-in by name (also the refused ones: 400 `tool.unavailable`), else a live custom tool by id
    or name (404 `tool.not_found`)."""
    if ref in BUILTIN:
        return BUILTIN[ref]
    if ref in REFUSED:
        raise tool_unavailable(ref, "toolRef")
    return await _custom(ctx, p.account_id, ref, None if space is None else space.id)


async def update(ctx: AppContext, row: CustomTool, spec: WebhookSpec, revision_id: str) -> CustomTool:
    """Changes apply to future calls; `revision_id` must be the tool's current revision (else 409
    `tool.revision_conflict`: someone changed it since it was read)."""
    values: dict[str, Any] = {}
    if spec.description is not None:
        values["description"] = spec.description
    if spec.url is not None:
        values["url"] = check_url(spec.url)
    if spec.timeout_ms is not None:
        values["timeout_ms"] = check_timeout(spec.timeout_ms)
    if spec.auth_secret_given:
        values["auth_secret"] = check_auth_secret(spec.auth_secret)
    if spec.input_schema is not None:
        values["input_schema"] = check_schema("inputSchema", spec.input_schema)
    if spec.output_schema is not None:
        values["output_schema"] = check_schema("outputSchema", spec.output_schema)
    if spec.runtime_types is not None:
        values["runtime_types"] = list(spec.runtime_types)
    async with ctx.db.transaction() as s:
        current = await s.get(CustomTool, row.id, with_for_update=True)
        if current is None or current.archived_at is not None:
            raise tool_not_found(row.id)
        if str(current.revision_id) != revision_id:
            raise Conflict(
                "The tool changed since you read it: read it again and send its currentRevisionId",
                code="tool.revision_conflict",
                details={"currentRevisionId": str(current.revision_id)},
            )
        for key, value in values.items():
            setattr(current, key, value)
        if values:
            current.revision_id = ids.new_id()
            current.updated_at = clock.now()
    return current


async def delete(ctx: AppContext, row: CustomTool) -> uuid.UUID:
    """Archives the tool: its calls stay readable, its name is free; agent versions that name it fail
    their next task with `tool.not_found`."""
    async with ctx.db.transaction() as s:
        current = await s.get(CustomTool, row.id, with_for_update=True)
        if current is None or current.archived_at is not None:
            raise tool_not_found(row.id)
        current.archived_at = current.updated_at = clock.now()
    return row.id


async def list_tools(
    ctx: AppContext, p: Principal, space: Space | None, page: PageParams, *, newest_first: bool
) -> tuple[list[BuiltinTool | CustomTool], str | None]:
    """The built-ins offered here and the live custom tools (of `space`, else of every space), ordered
    by (createdAt, id); the cursor is the last key seen."""
    stmt = select(CustomTool).where(CustomTool.account_id == p.account_id, CustomTool.archived_at.is_(None))
    if space is not None:
        stmt = stmt.where(CustomTool.space_id == space.id)
    async with ctx.db.read() as s:
        custom = list((await s.execute(stmt)).scalars())
    items: list[tuple[str, BuiltinTool | CustomTool]] = [
        (f"{CATALOG_DATE.isoformat()}|{t.name}", t) for t in BUILTIN.values()
    ]
    items += [(f"{clock_key(r)}|{r.id}", r) for r in custom]
    items.sort(key=lambda kv: kv[0], reverse=newest_first)
    if isinstance(page.after, str):
        items = [kv for kv in items if (kv[0] < page.after if newest_first else kv[0] > page.after)]
    if len(items) <= page.limit:
        return [v for _, v in items], None
    items = items[: page.limit]
    return [v for _, v in items], encode_cursor(items[-1][0])


def clock_key(row: CustomTool) -> str:
    created = row.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.isoformat()

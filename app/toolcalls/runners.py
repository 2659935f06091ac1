"""The executors: one coroutine per built-in tool and one for webhook custom tools.

Each takes the env and the (schema-valid) input and returns the result the model sees, or raises
`ToolFailed` with a stable code. Browser tools act on the env's Playwright page: the page named by
`pageId`, else the page `browser.pages.activate`/`open` made active (kept in `env.active_page_id`),
else the env's own page. Page ids are the browser's target ids (the ids `/v1/browsers/{id}/pages`
uses).

Secrets: `secrets.fill` asks the vault for the login only once the page's origin is known, types the
values into the page's sign-in fields, and returns which fields it filled; the values exist only in
this coroutine's locals and in the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from referencing.exceptions import Unresolvable
from sqlalchemy import select

from app.core import clock
from app.core.context import AppContext
from app.core.errors import DomainError
from app.egress.service import server_policy, server_refusal
from app.files.models import StorageFile
from app.invocations.engine import Cancelled, EngineFailure, redact, schema_problem, secret_values
from app.storage import make_store
from app.toolcalls import service
from app.toolcalls.env import ToolEnv
from app.toolcalls.failures import ToolFailed
from app.webhooks import signing

HUMAN_DEFAULT_SECONDS = 3600
FILES_LIST_DEFAULT = 50
READ_TEXT_DEFAULT = 64 * 1024
WEBHOOK_RESPONSE_LIMIT = 1024 * 1024
# Input keys of a tool that may be kept in the record; everything else of its input is left out.
_STORED_KEYS = {"secrets.fill": ("secret", "pageId", "submit")}


def stored_input(tool: Any, input: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of the input: all of it, except for tools that touch secrets, whose
    input keeps only the keys that never carry a value (the secret's reference, not its fields)."""
    keys = _STORED_KEYS.get(tool.name)
    if keys is None:
        return dict(input)
    return {k: input[k] for k in keys if k in input}


async def execute(ctx: AppContext, env: ToolEnv, tool: Any, input: dict[str, Any], call_id: uuid.UUID) -> Any:
    problem = _input_problem(input, tool.input_schema or {"type": "object"})
    if problem:
        raise ToolFailed("tool.input_invalid", f"The input does not match the tool's input schema: {problem}")
    if tool.kind == "webhook":
        return await webhook(ctx, env, tool, input, call_id)
    run = BUILTINS.get(tool.name)
    if run is None:
        raise ToolFailed("tool.execution_unsupported", f"{tool.name} is not available on this server")
    return await run(ctx, env, input, call_id)


def _input_problem(value: Any, schema: dict) -> str | None:
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where + ': ' if where else ''}{exc.message[:300]}"
    except jsonschema.SchemaError as exc:
        return f"the tool's input schema is not valid: {exc.message[:200]}"
    except Unresolvable as exc:
        return f"the tool's schema has a reference that cannot be resolved: {str(exc)[:200]}"
    return None


# --- pages ---------------------------------------------------------------------------------------


async def page_id(page: Page) -> str:
    session = await page.context.new_cdp_session(page)
    try:
        info = await session.send("Target.getTargetInfo")
    finally:
        try:
            await session.detach()
        except PlaywrightError:
            pass
    return info["targetInfo"]["targetId"]


async def _base_page(env: ToolEnv) -> Page:
    if env.page is None:
        raise ToolFailed("tool.runtime_unavailable", "This tool needs a browser and the call has none")
    try:
        return await env.page()
    except ToolFailed:
        raise
    except Exception as exc:
        raise ToolFailed("tool.runtime_unavailable", f"The browser cannot be reached: {str(exc)[:200]}") from None


async def _find(env: ToolEnv, wanted: str) -> Page:
    base = await _base_page(env)
    for page in base.context.pages:
        if not page.is_closed() and await page_id(page) == wanted:
            return page
    raise ToolFailed("tool.input_invalid", f"No open page has the id {wanted}")


async def current_page(env: ToolEnv, wanted: str | None = None) -> Page:
    """The page a browser tool acts on: `wanted`, else the active one, else the env's page."""
    if wanted:
        return await _find(env, wanted)
    if env.active_page_id:
        try:
            return await _find(env, env.active_page_id)
        except ToolFailed:
            env.active_page_id = None  # closed meanwhile
    return await _base_page(env)


async def _describe(page: Page, active: Page | None) -> dict[str, Any]:
    try:
        title = await page.title()
    except PlaywrightError:
        title = ""
    # A page may put a filled value in its URL (a GET form) or title: the model reads neither.
    values = await secret_values(page)
    return {
        "id": await page_id(page),
        "url": redact(page.url, values),
        "title": redact(title, values),
        "active": page is active,
    }


async def pages_list(ctx, env, input, call_id):
    active = await current_page(env)
    return {"pages": [await _describe(p, active) for p in active.context.pages if not p.is_closed()]}


async def pages_open(ctx, env, input, call_id):
    url = input.get("url")
    if url:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https") and url != "about:blank":
            raise ToolFailed("tool.input_invalid", "url must be an http(s) address or about:blank")
    base = await _base_page(env)
    page = await base.context.new_page()
    if url:
        try:
            await page.goto(url, wait_until="load", timeout=30_000)
        except PlaywrightError as exc:
            raise ToolFailed("tool.host_failed", f"The page could not be loaded: {str(exc)[:200]}") from None
    env.active_page_id = await page_id(page)
    return await _describe(page, page)


async def pages_get(ctx, env, input, call_id):
    active = await current_page(env)
    page = await current_page(env, input.get("pageId"))
    return await _describe(page, active)


async def pages_activate(ctx, env, input, call_id):
    page = await current_page(env, input["pageId"])
    await page.bring_to_front()
    env.active_page_id = await page_id(page)
    return await _describe(page, page)


async def pages_close(ctx, env, input, call_id):
    page = await current_page(env, input["pageId"])
    if env.active_page_id == input["pageId"]:
        env.active_page_id = None
    await page.close()
    return {"closed": True}


# --- stagehand -----------------------------------------------------------------------------------


def _engine(env: ToolEnv):
    if env.engine is None:
        raise ToolFailed("tool.runtime_unavailable", "This tool needs the task's model and the call has none")
    return env.engine


async def _engine_call(work):
    try:
        return await work
    except Cancelled:
        raise asyncio.CancelledError() from None
    except EngineFailure as exc:
        code = "tool.output_invalid" if exc.code == "invocation.output_validation_failed" else "tool.host_failed"
        raise ToolFailed(code, exc.message) from None
    except PlaywrightError as exc:
        raise ToolFailed("tool.host_failed", f"The browser failed: {str(exc)[:300]}") from None


async def stagehand_act(ctx, env, input, call_id):
    engine = _engine(env)
    page = await current_page(env, input.get("pageId"))
    done = await _engine_call(engine.act(page, input["instruction"]))
    return {
        "success": bool(done.get("success")),
        "action": done.get("actionDescription") or "",
        "message": done.get("message") or "",
    }


async def stagehand_observe(ctx, env, input, call_id):
    engine = _engine(env)
    page = await current_page(env, input.get("pageId"))
    return {"elements": await _engine_call(engine.observe(page, input["instruction"]))}


async def stagehand_extract(ctx, env, input, call_id):
    engine = _engine(env)
    page = await current_page(env, input.get("pageId"))
    schema = input.get("schema")
    if schema is not None and (problem := schema_problem(schema)):
        raise ToolFailed("tool.input_invalid", f"schema is not a usable JSON Schema: {problem[:200]}")
    data = await _engine_call(engine.extract(page, input["instruction"], schema))
    return {"data": data}


# --- human.request -------------------------------------------------------------------------------


async def human_request(ctx, env, input, call_id):
    """Suspend as awaiting_input until a person answers (respond validates the answer), the call is
    cancelled, or the request expires (failed `tool_call.input_expired`)."""
    schema = input.get("schema") or {}
    if problem := schema_problem(schema):
        raise ToolFailed("tool.input_invalid", f"schema is not a usable JSON Schema: {problem[:200]}")
    seconds = int(input.get("timeoutSeconds") or HUMAN_DEFAULT_SECONDS)
    expires_at = clock.now() + timedelta(seconds=seconds)
    request = {
        "id": str(call_id),
        "prompt": input["prompt"],
        "schema": schema,
        "expiresAt": clock.iso(expires_at),
        "handoff": env.runtime_id is not None,
        "viewUrl": env.view_url,
    }
    if not await service.suspend(ctx, call_id, request, expires_at):
        raise asyncio.CancelledError()  # cancelled before it could ask
    env.emit("tool_call.awaiting_input", {"toolCallId": str(call_id), "prompt": input["prompt"]})
    await env.on_input_request(request)
    try:
        while True:
            row = await service.load(ctx, call_id)
            if row is None or row.status == "canceled":
                raise asyncio.CancelledError()
            if row.status == "running" and row.responded_by is not None:
                env.emit("tool_call.input_received", {"toolCallId": str(call_id)})
                return {"value": row.response}
            if row.status == "awaiting_input" and clock.now() >= (row.expires_at or expires_at):
                raise ToolFailed("tool_call.input_expired", f"Nobody answered within {seconds} s")
            if row.status in ("succeeded", "failed"):
                raise ToolFailed(row.error.get("code") if row.error else "tool.outcome_unknown", "ended elsewhere")
            await asyncio.sleep(service.POLL_SECONDS)
    finally:
        await asyncio.shield(env.on_input_request(None))


# --- secrets -------------------------------------------------------------------------------------


def _vault():
    from app.vault import service as vault

    return vault


async def secrets_list(ctx, env, input, call_id):
    try:
        items = await _vault().list_for_agent(ctx, env.account_id, input.get("prefix"))
    except DomainError as exc:
        raise ToolFailed(exc.code, exc.message) from None
    return {"secrets": items}


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = parts.port or default
    return f"{parts.scheme}://{host}" + ("" if port == default else f":{port}")


# Fills the page's sign-in fields in one go, in the page itself, only while the document is still on
# `origin` (checked in the same task as the typing: a page that navigated meanwhile gets nothing):
# the first visible password input; the username is the last visible text-like input before it in the
# same form (or the document), preferring autocomplete=username/email; the one-time-code field is one
# with autocomplete=one-time-code or a name/id/placeholder that says otp, totp, 2fa or code. Each filled
# field is marked `data-bctrl-secret` (what the model reads of the page has its value redacted,
# app/invocations/engine.py) and, for the submit, the password field `data-bctrl-fill`.
_FILL = """
([origin, values]) => {
  for (const el of document.querySelectorAll('[data-bctrl-fill]')) el.removeAttribute('data-bctrl-fill');
  if (location.origin !== origin) return {moved: location.origin};
  const visible = (el) => !el.disabled && !el.readOnly && el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== 'hidden';
  const inputs = [...document.querySelectorAll('input')].filter(visible);
  const fields = {};
  const otp = /(otp|totp|2fa|mfa|one.?time|verification.?code|auth.?code|^code$)/i;
  const isOtp = (el) => el.autocomplete === 'one-time-code' ||
    otp.test(el.name || '') || otp.test(el.id || '') || otp.test(el.placeholder || '');
  const password = inputs.find((el) => el.type === 'password' && !isOtp(el));
  const textLike = (el) => ['text', 'email', 'tel', ''].includes(el.type) && !isOtp(el);
  if (password) {
    fields.password = password;
    const scope = password.form ? inputs.filter((el) => el.form === password.form) : inputs;
    const before = scope.filter((el) => textLike(el) &&
      (el.compareDocumentPosition(password) & Node.DOCUMENT_POSITION_FOLLOWING));
    const named = before.filter((el) => ['username', 'email'].includes(el.autocomplete));
    const user = named.length ? named[named.length - 1] : before[before.length - 1];
    if (user) fields.username = user;
  } else {
    // A first step that asks for the username alone (the password comes on the next page).
    const userish = (el) => ['username', 'email'].includes(el.autocomplete) || el.type === 'email' ||
      /(user|email|login)/i.test((el.name || '') + ' ' + (el.id || ''));
    const user = inputs.find((el) => textLike(el) && userish(el));
    if (user) fields.username = user;
  }
  const code = inputs.find((el) => isOtp(el) && el !== fields.password && el !== fields.username);
  if (code) fields.totp = code;
  const found = Object.keys(fields);
  const filled = [];
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  for (const name of ['username', 'password', 'totp']) {
    const el = fields[name], value = values[name];
    if (!el || !value) continue;
    el.focus();
    setter.call(el, value);
    el.setAttribute('data-bctrl-secret', '');
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
    filled.push(name);
  }
  if (fields.password) fields.password.setAttribute('data-bctrl-fill', 'password');
  return {found, filled};
}
"""
_UNMARK = (
    "() => { for (const el of document.querySelectorAll('[data-bctrl-fill]')) el.removeAttribute('data-bctrl-fill'); }"
)


async def secrets_fill(ctx, env, input, call_id):
    """Fill a login into the page's sign-in form, only on an origin the secret allows (403
    `secrets.origin_not_allowed` from the vault otherwise). The result names the fields filled."""
    vault = _vault()
    page = await current_page(env, input.get("pageId"))
    origin = origin_of(page.url)
    if origin is None:
        raise ToolFailed("secrets.origin_not_allowed", f"The page ({page.url[:200]}) has no web origin to fill into")
    try:
        secret = await vault.resolve(ctx, env.account_id, input["secret"])
        login = await vault.login_for(ctx, secret, origin, env.actor)
    except DomainError as exc:
        raise ToolFailed(exc.code, exc.message) from None
    try:
        values = {"username": login.username, "password": login.password, "totp": login.totp_code}
        # The page may have navigated since the vault checked its origin: the fill checks it again, in
        # the page, in the same step as it types (a document that is not on `origin` gets nothing).
        done = await page.evaluate(_FILL, [origin, values])
        if "moved" in done:
            raise ToolFailed("secrets.origin_not_allowed", "The page left the allowed origin before the fill")
        if "password" not in done["found"] and "username" not in done["found"]:
            raise ToolFailed("tool.input_invalid", "The page has no sign-in form to fill (no visible password field)")
        filled: list[str] = done["filled"]
        if input.get("submit") and "password" in done["found"]:
            await page.locator('[data-bctrl-fill="password"]').first.press("Enter", timeout=5_000)
        with contextlib.suppress(PlaywrightError):  # the submit may have left the document already
            await page.evaluate(_UNMARK)
    except PlaywrightError as exc:
        # Playwright's message may quote the call, never the value (the values are an argument, which
        # its errors do not print); keep only the first line to be sure.
        raise ToolFailed("tool.host_failed", f"The fill failed: {str(exc).splitlines()[0][:200]}") from None
    finally:
        del login
        values = {}
    env.emit("tool_call.secret_filled", {"toolCallId": str(call_id), "fields": filled, "origin": origin})
    return {"filled": filled, "origin": origin}


# --- files ---------------------------------------------------------------------------------------


def _space(env: ToolEnv) -> uuid.UUID:
    if env.space_id is None:
        raise ToolFailed("tool.context_invalid", "The call has no space whose files it could read")
    return env.space_id


async def files_list(ctx, env, input, call_id):
    space_id = _space(env)
    limit = int(input.get("limit") or FILES_LIST_DEFAULT)
    stmt = select(StorageFile).where(StorageFile.space_id == space_id, StorageFile.account_id == env.account_id)
    if input.get("prefix"):
        stmt = stmt.where(StorageFile.path.startswith(input["prefix"], autoescape=True))
    async with ctx.db.read() as s:
        rows = list((await s.execute(stmt.order_by(StorageFile.path).limit(limit + 1))).scalars())
    return {
        "files": [
            {
                "id": str(r.id),
                "path": r.path,
                "name": r.name,
                "size": r.size_bytes,
                "contentType": r.content_type,
                "updatedAt": clock.iso(r.updated_at),
            }
            for r in rows[:limit]
        ],
        "hasMore": len(rows) > limit,
    }


async def files_read_text(ctx, env, input, call_id):
    space_id = _space(env)
    path = input["path"].lstrip("/")
    limit = int(input.get("maxBytes") or READ_TEXT_DEFAULT)
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(StorageFile).where(
                    StorageFile.space_id == space_id, StorageFile.account_id == env.account_id, StorageFile.path == path
                )
            )
        ).scalar_one_or_none()
    if row is None:
        raise ToolFailed("storage_file.not_found", f"No file at {path} in the space")
    chunks = []
    async for chunk in make_store(ctx.settings).open(
        row.object_key, 0, min(limit, row.size_bytes) - 1 if row.size_bytes else 0
    ):
        chunks.append(chunk)
    data = b"".join(chunks)[:limit] if row.size_bytes else b""
    if b"\x00" in data:
        raise ToolFailed("tool.input_invalid", f"{path} is not a text file ({row.content_type})")
    return {"text": data.decode("utf-8", errors="replace"), "truncated": row.size_bytes > limit}


# --- webhook custom tools ------------------------------------------------------------------------


def _webhook_addresses(ctx: AppContext, url: str) -> list[str]:
    """The addresses the tool's URL is called at: its host resolved once, every address checked like
    the egress proxy checks a browser's destination (ToolFailed `tool.not_allowed` if any is refused,
    `tool.host_unavailable` if the name does not resolve). The call connects to these, never to the name
    again (which could answer differently by then). Blocking (DNS, /proc): run it in a thread."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolFailed("tool.not_allowed", "The tool's URL cannot be called: it is not an http(s) address")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ToolFailed("tool.not_allowed", "The tool's URL cannot be called: its port is invalid") from None
    # As with AI endpoints, any http(s) address a tool names is allowed, loopback and private included,
    # except what browsers may never reach either (the control plane, debugging ports, metadata).
    policy = server_policy("private", ctx.settings, ctx.driver)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ToolFailed("tool.host_unavailable", "The tool's host name does not resolve", retryable=True) from None
    addresses: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        reason = server_refusal(policy, address, port)
        if reason:
            reason = reason.replace("from browsers", "as tool webhooks")
            raise ToolFailed("tool.not_allowed", f"The tool's URL cannot be called: {reason}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise ToolFailed("tool.host_unavailable", "The tool's host name does not resolve", retryable=True)
    return addresses


def _too_large() -> ToolFailed:
    return ToolFailed("tool.output_invalid", f"The tool's answer is larger than {WEBHOOK_RESPONSE_LIMIT // 1024} KiB")


async def _post(client: httpx.AsyncClient, url: str, addresses: list[str], body: str, headers: dict[str, str]):
    """POST to the first of `addresses` that accepts the connection, with the URL's host name kept as the
    Host header and TLS server name (the certificate is checked against it); (status, body), the body
    read only up to the answer limit (and not decompressed: a small compressed answer cannot inflate)."""
    target = httpx.URL(url)
    headers = {**headers, "host": target.netloc.decode("ascii"), "accept-encoding": "identity"}
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    for n, address in enumerate(addresses):
        try:
            async with client.stream(
                "POST", target.copy_with(host=address), content=body, headers=headers, extensions=extensions
            ) as response:
                if response.status_code >= 300:
                    return response.status_code, b""
                if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
                    raise ToolFailed("tool.output_invalid", "The tool's answer is compressed; answer uncompressed JSON")
                if int(response.headers.get("content-length") or 0) > WEBHOOK_RESPONSE_LIMIT:
                    raise _too_large()
                data = bytearray()
                async for chunk in response.aiter_raw():
                    data += chunk
                    if len(data) > WEBHOOK_RESPONSE_LIMIT:
                        raise _too_large()
                return response.status_code, bytes(data)
        except httpx.ConnectError:
            if n == len(addresses) - 1:
                raise
    raise AssertionError("unreachable")


async def _signing_key(ctx: AppContext, env: ToolEnv, custom: Any) -> str | bytes:
    """The key the call is signed with: the tool's own signing secret (`whsec_...`), or the value of its
    `authSecret` vault reference (used as a `whsec_` secret when it is one, else as the raw key bytes,
    which the receiver passes to standardwebhooks as bytes)."""
    from app.tools import service as tools

    try:
        if custom.auth_secret:
            value = await _vault().signing_value(ctx, env.account_id, custom.auth_secret, env.actor)
            return value if value.startswith("whsec_") else value.encode()
        return tools.signing_secret(ctx, custom)
    except DomainError as exc:
        raise ToolFailed(exc.code, exc.message) from None


async def webhook(ctx: AppContext, env: ToolEnv, tool: Any, input: dict[str, Any], call_id: uuid.UUID) -> Any:
    custom = tool.custom
    addresses = await asyncio.to_thread(_webhook_addresses, ctx, custom.url)
    payload = {
        "id": str(call_id),
        "type": "tool.call",
        "tool": {"id": str(custom.id), "name": custom.name, "revisionId": str(custom.revision_id)},
        "input": input,
        "taskId": str(env.task_id) if env.task_id else None,
        "runId": str(env.run_id) if env.run_id else None,
        "runtimeId": str(env.runtime_id) if env.runtime_id else None,
        "spaceId": str(env.space_id) if env.space_id else None,
        "createdAt": clock.iso(clock.now()),
    }
    body = json.dumps(payload, separators=(",", ":"))
    sent_at = clock.now()
    msg_id = f"msg_{call_id.hex}"
    headers = {
        "content-type": "application/json",
        **signing.headers([await _signing_key(ctx, env, custom)], msg_id, sent_at, body),
        "user-agent": "bctrl-tool-call/1",
    }
    seconds = max(0.1, custom.timeout_ms / 1000)
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False, trust_env=False) as client:
            async with asyncio.timeout(seconds):
                status, answer = await _post(client, custom.url, addresses, body, headers)
    except (TimeoutError, httpx.TimeoutException):
        raise ToolFailed(
            "tool.timed_out", f"The tool did not answer within {custom.timeout_ms} ms", retryable=True
        ) from None
    except httpx.HTTPError as exc:
        raise ToolFailed(
            "tool.host_unavailable", f"The tool's URL cannot be reached ({type(exc).__name__})", retryable=True
        ) from None
    if status >= 300:
        raise ToolFailed(
            "tool.host_failed", f"The tool answered HTTP {status}", retryable=status >= 500 or status == 429
        )
    try:
        result = json.loads(answer)
    except ValueError:
        raise ToolFailed("tool.output_invalid", "The tool's answer is not JSON") from None
    problem = _input_problem(result, custom.output_schema or {})
    if problem:
        raise ToolFailed("tool.output_invalid", f"The tool's answer does not match its output schema: {problem}")
    return result


BUILTINS = {
    "stagehand.act": stagehand_act,
    "stagehand.observe": stagehand_observe,
    "stagehand.extract": stagehand_extract,
    "human.request": human_request,
    "browser.pages.list": pages_list,
    "browser.pages.open": pages_open,
    "browser.pages.get": pages_get,
    "browser.pages.activate": pages_activate,
    "browser.pages.close": pages_close,
    "secrets.list": secrets_list,
    "secrets.fill": secrets_fill,
    "files.list": files_list,
    "files.read_text": files_read_text,
}

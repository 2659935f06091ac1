"""An HTTP request made as the browser would make it: its cookies, its proxy, its network policy.

The server sends the request itself, through the egress proxy entrance the browser was started against
(`proxyUrl` of its driver state, the same `--proxy-server` Chromium uses), so the egress policy's check
(and any upstream proxy chained behind that entrance) applies exactly as to the browser's own traffic.
Before each hop it asks the browser for that URL's cookies (CDP `Network.getCookies` on the active page,
httpOnly ones included), sends them with the page's user agent, and stores every `Set-Cookie` of the
answer back into the browser (`Network.setCookies`, with the URL as the cookie's origin). Redirects
are followed here (at most 20), each hop with its own cookies. Why not from inside a page: a page's
fetch is bound by CORS and by the page's origin, cannot stream an unbounded body back without holding
it in the page's memory, and would need a page at the target's origin for SameSite cookies.

The operation holds the browser's controller (app/browsing/access.py) while it reads and writes
cookies and waits for the answer's headers; the streamed body of `/fetch/stream` is read after the
browser is let go. Each request is one run event of category `fetch`: method, the URL without its
query and fragment (a query often carries secrets), status and byte count, never the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import structlog

from app.browsing import access
from app.core.context import AppContext
from app.core.errors import DomainError, InvalidRequest
from app.runs import events
from app.runtimes.models import Runtime

log = structlog.get_logger(__name__)

CATEGORY = "fetch"
# The body `fetch` returns (base64) unless `maxBytes` says less; beyond it the answer is truncated.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_BYTES_LIMIT = 25 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000
MAX_REQUEST_BODY = 10 * 1024 * 1024
MAX_REDIRECTS = 20
CHUNK = 64 * 1024
# Headers a caller may not set: the transport's own, and the proxy's.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
# Hosts whose plain-HTTP answers a browser trusts like HTTPS ones (potentially trustworthy origins).
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# What a header's name and value may be (RFC 9110 token; a value of visible ASCII, spaces and tabs).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
# Headers of the caller that are not sent on to another origin a redirect leads to.
_ORIGIN_BOUND = frozenset({"authorization", "cookie"})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class FetchFailed(DomainError):
    status = 502
    code = "browser.fetch_failed"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"The request to {url} failed: {reason}", details={"url": url, "reason": reason})


class FetchTimeout(DomainError):
    status = 504
    code = "browser.fetch_timeout"

    def __init__(self, url: str, timeout_ms: int) -> None:
        super().__init__(f"No answer from {url} within {timeout_ms} ms", details={"url": url, "timeoutMs": timeout_ms})


@dataclass
class FetchSpec:
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class Fetched:
    run_id: uuid.UUID
    event_id: str
    url: str
    status: int
    status_text: str
    headers: dict[str, str]
    body: bytes
    truncated: bool
    redirected: bool
    duration_ms: int


@dataclass
class Streamed:
    run_id: uuid.UUID
    url: str
    status: int
    status_text: str
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def _bad(field_name: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"{field_name}: {message}",
        details={"fields": [{"field": field_name, "in": "body", "message": message, "type": "value_error"}]},
    )


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host; anything else (file:, data:, javascript:, ...) is 400."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError:
        raise _bad("url", "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad("url", f"only http and https URLs can be fetched, not {parts.scheme or 'a relative URL'}")
    if not parts.hostname:
        raise _bad("url", "the URL has no host")
    return url


def check_headers(headers: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
            raise _bad(f"headers.{name}", "this header is set by the transport and cannot be given")
        if not _TOKEN.fullmatch(name):
            raise _bad(f"headers.{name[:100]}", "not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
        if not _FIELD_VALUE.fullmatch(value):
            raise _bad(f"headers.{name}", "not a valid HTTP header value (printable ASCII and tabs only)")
        out[name] = value
    return out


def shown_url(url: str) -> str:
    """The URL as the run records it: no credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- cookies ----------------------------------------------------------------------------------------


def _expiry(value: str) -> float | None:
    with contextlib.suppress(TypeError, ValueError, IndexError):
        parsed = email.utils.parsedate_to_datetime(value)
        return parsed.timestamp()
    return None


def _cookie_domain(value: str, url: str) -> str | None:
    """The CDP domain of a `Domain` attribute set by an answer from `url` ("" for a host-only cookie), or
    None when it names another site: CDP's setCookies checks no domain against the URL, so an answer
    could otherwise plant cookies for any site in the browser (RFC 6265 5.3 step 6, 5.1.3)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    domain = value.strip().lower().lstrip(".").rstrip(".")
    if not domain or not host:
        return None
    try:
        ipaddress.ip_address(host)
        return "" if domain == host else None  # an address takes no Domain but its own
    except ValueError:
        pass
    if domain == host:
        return f".{domain}"
    # A parent domain of the host, never a bare top-level name (`com`, `test`).
    if host.endswith(f".{domain}") and "." in domain:
        return f".{domain}"
    return None


def parse_set_cookie(line: str, url: str) -> dict[str, Any] | None:
    """One `Set-Cookie` value as a CDP CookieParam for `url` (its defaults of domain and path)."""
    first, *attrs = line.split(";")
    name, sep, value = first.partition("=")
    if not sep or not name.strip():
        return None
    cookie: dict[str, Any] = {"name": name.strip(), "value": value.strip().strip('"'), "url": url}
    max_age: int | None = None
    for attr in attrs:
        key, _, val = attr.partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "domain" and val:
            domain = _cookie_domain(val, url)
            if domain is None:
                return None  # a cookie for a site other than the answer's own: refused, as a browser does
            if domain:
                cookie["domain"] = domain
        elif key == "path" and val.startswith("/"):
            cookie["path"] = val
        elif key == "expires" and (when := _expiry(val)) is not None:
            cookie.setdefault("expires", when)
        elif key == "max-age":
            with contextlib.suppress(ValueError):
                max_age = int(val)
        elif key == "secure":
            cookie["secure"] = True
        elif key == "httponly":
            cookie["httpOnly"] = True
        elif key == "samesite" and val.lower() in _SAME_SITE:
            cookie["sameSite"] = _SAME_SITE[val.lower()]
    if max_age is not None:
        cookie["expires"] = time.time() + max_age if max_age > 0 else 1.0  # in the past: removes it
    # What a browser refuses too: a Secure cookie from a plain-HTTP answer (it would overwrite the HTTPS
    # site's), and the __Secure- and __Host- prefixes without what they promise.
    trusted = urlsplit(url).scheme.lower() == "https" or (urlsplit(url).hostname or "") in _LOOPBACK_NAMES
    if cookie.get("secure") and not trusted:
        return None
    lowered = cookie["name"].lower()
    if lowered.startswith("__secure-") and not (cookie.get("secure") and trusted):
        return None
    if lowered.startswith("__host-") and not (
        cookie.get("secure") and trusted and "domain" not in cookie and cookie.get("path") == "/"
    ):
        return None
    return cookie


async def _cookie_header(held: access.Held, session: str, url: str) -> str | None:
    found = (await held.send("Network.getCookies", {"urls": [url]}, session))["cookies"]
    return "; ".join(f"{c['name']}={c['value']}" for c in found) or None


async def _store_cookies(held: access.Held, session: str, response: httpx.Response, url: str) -> None:
    cookies = [c for line in response.headers.get_list("set-cookie") if (c := parse_set_cookie(line, url))]
    if cookies:
        await held.send("Network.setCookies", {"cookies": cookies}, session)


async def _user_agent(held: access.Held, session: str) -> str:
    answer = await held.send("Runtime.evaluate", {"expression": "navigator.userAgent", "returnByValue": True}, session)
    value = (answer.get("result") or {}).get("value")
    if isinstance(value, str) and value:
        return value
    return (await held.send("Browser.getVersion"))["userAgent"]


# --- the request ------------------------------------------------------------------------------------


def _proxy(ctx: AppContext, runtime: Runtime) -> str | None:
    """The egress proxy entrance the browser itself uses: its own (a browser with an upstream proxy of its
    own has an entrance chaining to it), else the one it was launched against, else the server's."""
    state = runtime.driver_state or {}
    return state.get("proxyEntrance") or state.get("proxyUrl") or getattr(ctx.driver, "proxy_url", None)


def _headers_out(response: httpx.Response) -> dict[str, str]:
    """The answer's headers as a page's fetch() shows them: names lower case, repeats joined, no Set-Cookie."""
    out: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        if key == "set-cookie":
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


async def _renewing(held: access.Held) -> None:
    while True:
        await asyncio.sleep(access.HOLD_TTL_MS / 3000)
        await held.renew()


async def _exchange(
    ctx: AppContext, held: access.Held, client: httpx.AsyncClient, spec: FetchSpec
) -> tuple[httpx.Response, str, bool]:
    """Send the request and follow redirects, each hop with the browser's cookies; the final answer
    (its body not read yet), its URL and whether it was redirected."""
    session = await held.session(await held.active_page())
    agent = await _user_agent(held, session)
    url, method, body = spec.url, spec.method, spec.body
    given_headers = dict(spec.headers)
    for hop in range(MAX_REDIRECTS + 1):
        headers = {"User-Agent": agent, "Accept": "*/*", "Accept-Language": "en-US,en;q=0.9"}
        headers.update(given_headers)
        if cookie := await _cookie_header(held, session, url):
            given = next((v for k, v in given_headers.items() if k.lower() == "cookie"), None)
            headers = {k: v for k, v in headers.items() if k.lower() != "cookie"}
            headers["Cookie"] = f"{cookie}; {given}" if given else cookie
        request = client.build_request(method, url, headers=headers, content=body)
        try:
            response = await client.send(request, stream=True)
        except httpx.ProxyError as exc:
            raise FetchFailed(shown_url(url), f"the browser's network policy or proxy refused it ({exc})") from exc
        except (httpx.TimeoutException, TimeoutError):
            raise
        except httpx.HTTPError as exc:
            raise FetchFailed(shown_url(url), f"{type(exc).__name__}: {exc}") from exc
        if response.headers.get("x-bctrl-egress") == "refused":
            reason = (await response.aread()).decode("utf-8", "replace").strip()
            await response.aclose()
            raise FetchFailed(shown_url(url), reason or "refused by the browser's network policy")
        await _store_cookies(held, session, response, url)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return response, url, hop > 0
        await response.aclose()
        before, url = url, urljoin(url, location)
        try:
            check_url(url)
        except InvalidRequest:
            raise FetchFailed(shown_url(spec.url), "it redirects to a URL that is not http or https") from None
        if _origin(url) != _origin(before):
            # The caller's credentials were meant for the origin it named (as a browser's fetch drops them).
            given_headers = {k: v for k, v in given_headers.items() if k.lower() not in _ORIGIN_BOUND}
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, body = ("HEAD" if method == "HEAD" else "GET"), None
    raise FetchFailed(shown_url(spec.url), f"more than {MAX_REDIRECTS} redirects")


def _client(ctx: AppContext, runtime: Runtime, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        proxy=_proxy(ctx, runtime),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout_s),
        http2=False,
    )


async def _event(
    ctx: AppContext, run_id: uuid.UUID, type: str, data: dict[str, Any], actor: str | None, epoch: int | None
) -> str:
    async with ctx.db.transaction() as s:
        row = await events.append(s, run_id, type, CATEGORY, {**data, "epoch": epoch, "actor": actor})
    return str(row.id)


@contextlib.asynccontextmanager
async def _failures_recorded(held: access.Held, spec: FetchSpec, started: float) -> AsyncIterator[None]:
    """A request that times out or fails upstream is a `fetch.failed` run event too (then the error)."""
    try:
        yield
    except (FetchTimeout, FetchFailed) as exc:
        await _failed(held, spec, started, exc.code)
        raise


async def _failed(held: access.Held, spec: FetchSpec, started: float, code: str) -> None:
    data = {"method": spec.method, "url": shown_url(spec.url), "code": code}
    data["durationMs"] = int((time.monotonic() - started) * 1000)
    with contextlib.suppress(Exception):
        await held.event("fetch.failed", CATEGORY, data)


async def fetch(ctx: AppContext, runtime: Runtime, spec: FetchSpec, actor: str | None) -> Fetched:
    """The whole answer, its body up to `spec.max_bytes` (then `truncated`)."""
    started = time.monotonic()
    async with access.hold(ctx, runtime, actor=actor) as held:
        renewer = asyncio.create_task(_renewing(held))
        client = _client(ctx, runtime, spec.timeout_ms / 1000)
        try:
            async with _failures_recorded(held, spec, started), asyncio.timeout(spec.timeout_ms / 1000):
                response, url, redirected = await _exchange(ctx, held, client, spec)
                try:
                    body, truncated = bytearray(), False
                    async for chunk in response.aiter_bytes(CHUNK):
                        room = spec.max_bytes - len(body)
                        if len(chunk) > room:
                            body += chunk[:room]
                            truncated = True
                            break
                        body += chunk
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            await _failed(held, spec, started, FetchTimeout.code)
            raise FetchTimeout(shown_url(spec.url), spec.timeout_ms) from None
        except httpx.HTTPError as exc:
            await _failed(held, spec, started, FetchFailed.code)
            raise FetchFailed(shown_url(spec.url), f"{type(exc).__name__}: {exc}") from exc
        finally:
            renewer.cancel()
            await client.aclose()
        duration = int((time.monotonic() - started) * 1000)
        data = {
            "method": spec.method,
            "url": shown_url(url),
            "status": response.status_code,
            "bodyBytes": len(body),
            "truncated": truncated,
            "durationMs": duration,
        }
        event_id = await held.event("fetch.completed", CATEGORY, data)
        run_id = held.run_id
    return Fetched(
        run_id=run_id,
        event_id=event_id,
        url=url,
        status=response.status_code,
        status_text=response.reason_phrase,
        headers=_headers_out(response),
        body=bytes(body),
        truncated=truncated,
        redirected=redirected,
        duration_ms=duration,
    )


async def open_stream(ctx: AppContext, runtime: Runtime, spec: FetchSpec, actor: str | None) -> Streamed:
    """The answer's status and headers, and its body as it arrives (of any size). `timeoutMs` bounds the
    wait for the headers and then each wait for more of the body."""
    started = time.monotonic()
    client = _client(ctx, runtime, spec.timeout_ms / 1000)
    try:
        async with access.hold(ctx, runtime, actor=actor) as held:
            renewer = asyncio.create_task(_renewing(held))
            try:
                async with _failures_recorded(held, spec, started), asyncio.timeout(spec.timeout_ms / 1000):
                    response, url, _ = await _exchange(ctx, held, client, spec)
            except (TimeoutError, httpx.TimeoutException):
                await _failed(held, spec, started, FetchTimeout.code)
                raise FetchTimeout(shown_url(spec.url), spec.timeout_ms) from None
            finally:
                renewer.cancel()
            run_id, epoch = held.run_id, held.epoch
    except BaseException:
        await client.aclose()
        raise

    async def chunks() -> AsyncIterator[bytes]:
        size, outcome = 0, "unknown"
        try:
            async for chunk in response.aiter_bytes(CHUNK):
                size += len(chunk)
                yield chunk
            outcome = "completed"
        except httpx.HTTPError as exc:
            log.info("fetch_stream_cut", url=shown_url(url), error=type(exc).__name__)
        finally:
            await response.aclose()
            await client.aclose()
            data = {
                "method": spec.method,
                "url": shown_url(url),
                "status": response.status_code,
                "bodyBytes": size,
                "streamed": True,
                "outcome": outcome,
                "durationMs": int((time.monotonic() - started) * 1000),
            }
            with contextlib.suppress(Exception):
                await asyncio.shield(_event(ctx, run_id, f"fetch.{outcome}", data, actor, epoch))

    return Streamed(run_id, url, response.status_code, response.reason_phrase, _headers_out(response), chunks())

"""A browser's `networkTraffic` rules, enforced by the run observer (app/cdp/observer.py) in the
browser for the whole run, whoever drives it.

How: the observer auto-attaches to every target with `waitForDebuggerOnStart` when a browser has
rules, so a new page, iframe or worker waits until this module has sent `Fetch.enable` (patterns that
let through only the requests a rule may concern) in the observer's own session, and only then
resumes it (`Runtime.runIfWaitingForDebugger`). Each paused request is decided here, by the rules in
Python, the one authority (the Fetch patterns are a superset filter): refused with
`Fetch.failRequest(BlockedByClient)` (the page sees `net::ERR_BLOCKED_BY_CLIENT`) and recorded as a
`network.blocked` run event naming the rule, or continued untouched. A client's own interception
(Playwright's `route()`, its own `Fetch.enable`) runs in its session beside ours: Chromium offers a
request to each interceptor, so a route still sees every request no rule refuses.

Rules (see app/current/traffic_schemas.py for the pattern syntax): a request loads only if no rule
refuses it. Checked in this order, the first that refuses is named: urlBlocklist, blockResourceTypes,
blockAds, blockTrackers, urlAllowlist (set: the URL must match one of its patterns). Only requests
that reach the network are subject to them (http, https; not data:, blob:, about:, WebSockets).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import structlog

from app.cdp.traffic_hosts import AD_HOSTS, TRACKER_HOSTS

log = structlog.get_logger(__name__)

# A URL as events keep it at most (the observer's limit too).
URL_LIMIT = 2048
# Our resource type words -> CDP's Network.ResourceType (ping and beacon are both `Ping`: see _our_type).
CDP_TYPES = {
    "media": "Media",
    "texttrack": "TextTrack",
    "font": "Font",
    "image": "Image",
    "ping": "Ping",
    "prefetch": "Prefetch",
    "beacon": "Ping",
}
_FROM_CDP = {cdp: ours for ours, cdp in CDP_TYPES.items() if ours != "beacon"}
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_FETCH_STARS = 8
# Targets: pages, and the children a page's auto-attach reports (the observer's words too). Each of
# them has its requests intercepted by a Fetch session of its own.
PAGE_TYPES = ("page",)
CHILD_TYPES = ("iframe", "worker", "shared_worker", "service_worker")
INTERCEPTED = PAGE_TYPES + CHILD_TYPES


class Wildcard:
    """A pattern whose `*` matches any run of characters, over the whole string. Matched by finding its
    literal parts in order (leftmost each, which is optimal for `*`-only patterns): no regular
    expression, so no pattern can make a match slow (the observer's loop is the server's)."""

    def __init__(self, pattern: str) -> None:
        parts = pattern.split("*")
        self.head, self.middle, self.tail = parts[0], [p for p in parts[1:-1] if p], parts[-1]
        self.starred = len(parts) > 1

    def fullmatch(self, text: str) -> bool:
        if not self.starred:
            return text == self.head
        if (
            len(text) < len(self.head) + len(self.tail)
            or not text.startswith(self.head)
            or not text.endswith(self.tail)
        ):
            return False
        position, end = len(self.head), len(text) - len(self.tail)
        for part in self.middle:
            found = text.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True


def _split_host(entry: str) -> tuple[str, str]:
    host, _, path = entry.partition("/")
    return host, ("/" + path) if path else ""


def _host_filter(host: str, path: str) -> list[str]:
    """Fetch patterns for URLs on `host` or its subdomains (any port) whose path starts with `path`: a
    superset (`*://*ads.com/*` also matches `bads.com`), which the rules in Python narrow down."""
    path = path or "/"
    return [f"*://*{host}{path}*", f"*://*{host}:*{path}*"]


class HostList:
    """Hosts (each covering its subdomains), some with a path prefix (`facebook.com/tr`)."""

    def __init__(self, entries: frozenset[str]) -> None:
        self.hosts: dict[str, list[str]] = {}
        for entry in entries:
            host, path = _split_host(entry)
            self.hosts.setdefault(host, []).append(path)

    def match(self, host: str, path: str) -> str | None:
        """The listed entry the host (and path) falls under, or None."""
        labels = host.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            for prefix in self.hosts.get(candidate, ()):
                if not prefix or path.startswith(prefix):
                    return candidate + prefix
        return None

    def fetch_patterns(self) -> list[str]:
        return [pattern for host, paths in self.hosts.items() for path in paths for pattern in _host_filter(host, path)]


class Pattern:
    """One user pattern: a URL pattern (`*` wildcards over the whole URL) or a host pattern."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.url_re: Wildcard | None = None
        self.host = self.port = None
        self.subdomains_only = False
        if "://" in text:
            self.url_re = Wildcard(text)
        else:
            host, _, port = text.partition(":")
            self.subdomains_only = host.startswith("*.")
            self.host, self.port = host.removeprefix("*."), port or None

    def match(self, url: str, host: str, port: str) -> bool:
        if self.url_re is not None:
            return self.url_re.fullmatch(url)
        if self.port is not None and port != self.port:
            return False
        if host == self.host:
            return not self.subdomains_only
        return host.endswith("." + self.host)

    def fetch_patterns(self) -> list[str]:
        """Fetch `urlPattern`s matching at least what this pattern matches (`?` is Fetch's one-character
        wildcard, which matches a literal `?` too; patterns hold no backslash)."""
        if self.url_re is not None:
            # Chromium's matcher gives up (no match) past 16 nested `*`: a long pattern is filtered by its
            # literal start only.
            return [self.text if self.text.count("*") <= MAX_FETCH_STARS else self.url_re.head + "*"]
        # With a port too: a URL on its scheme's default port names none.
        return _host_filter(self.host, "")


class TrafficRules:
    """The rules of one browser, from its stored `networkTraffic` (wire words)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.blocklist = [Pattern(p) for p in config.get("urlBlocklist") or ()]
        self.allowlist = [Pattern(p) for p in config.get("urlAllowlist") or ()]
        self.types = set(config.get("blockResourceTypes") or ())
        self.ads = HostList(AD_HOSTS) if config.get("blockAds") else None
        self.trackers = HostList(TRACKER_HOSTS) if config.get("blockTrackers") else None

    @classmethod
    def of(cls, config: dict[str, Any] | None) -> TrafficRules | None:
        rules = cls(config or {})
        return rules if rules.active else None

    @property
    def active(self) -> bool:
        return bool(self.blocklist or self.allowlist or self.types or self.ads or self.trackers)

    def fetch_patterns(self) -> list[dict[str, str]]:
        """What the browser pauses for us: everything when there is an allow list, else a superset of
        what the block rules could refuse."""
        if self.allowlist:
            return [{"urlPattern": "*"}]
        patterns = [f for p in self.blocklist for f in p.fetch_patterns()]
        for hosts in (self.ads, self.trackers):
            if hosts is not None:
                patterns += hosts.fetch_patterns()
        found = [{"urlPattern": p} for p in dict.fromkeys(patterns)]
        for cdp_type in dict.fromkeys(CDP_TYPES[t] for t in sorted(self.types)):
            found.append({"urlPattern": "*", "resourceType": cdp_type})
        return found

    def verdict(self, url: str, cdp_type: str | None, headers: dict[str, str] | None = None) -> tuple[str, str] | None:
        """(rule, what matched) of the first rule that refuses the request, or None: it loads."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = str(parts.port or DEFAULT_PORTS.get(parts.scheme, ""))
        except ValueError:
            host, port, parts = "", "", None
        if parts is None or parts.scheme not in ("http", "https"):
            return None
        for pattern in self.blocklist:
            if pattern.match(url, host, port):
                return "urlBlocklist", pattern.text
        ours = _our_type(cdp_type, headers or {})
        if ours in self.types:
            return "blockResourceTypes", ours
        for rule, hosts in (("blockAds", self.ads), ("blockTrackers", self.trackers)):
            if hosts is not None and (entry := hosts.match(host, parts.path or "/")):
                return rule, entry
        if self.allowlist and not any(p.match(url, host, port) for p in self.allowlist):
            return "urlAllowlist", "not on the allow list"
        return None


def _our_type(cdp_type: str | None, headers: dict[str, str]) -> str | None:
    """Our resource type word for a CDP type: a `Ping` is a hyperlink ping (`<a ping>`, which says
    `Ping-To` / `text/ping`) or else a beacon (`navigator.sendBeacon`)."""
    if cdp_type is None:
        return None
    if cdp_type == "Ping":
        lowered = {k.lower(): v for k, v in headers.items()}
        is_ping = "ping-to" in lowered or "ping-from" in lowered or lowered.get("content-type") == "text/ping"
        return "ping" if is_ping else "beacon"
    return _FROM_CDP.get(cdp_type, cdp_type.lower())


def url_without_query(url: str) -> str:
    """The URL as the run event keeps it: no query or fragment (they may carry ids and secrets)."""
    return url.split("#", 1)[0].split("?", 1)[0][:URL_LIMIT]


class TrafficGuard:
    """The observer's part that enforces one run's rules (one per observer, only when there are rules)."""

    def __init__(self, observer, rules: TrafficRules) -> None:
        self.observer = observer
        self.rules = rules
        self.patterns = rules.fetch_patterns()
        self._tasks: set[asyncio.Task] = set()
        # Set once the targets that existed before the observer (the browser's first page) are armed.
        self.settled = asyncio.Event()

    @classmethod
    def of(cls, observer, state: dict[str, Any]) -> TrafficGuard | None:
        rules = TrafficRules.of(state.get("traffic"))
        return cls(observer, rules) if rules is not None else None

    async def settle(self) -> None:
        """At the end of the observer's setup: wait until the targets it attached to are armed (the run
        is reported active only then, app/runtimes/supervisor.py `settle`)."""
        try:
            await asyncio.sleep(0)  # the attach requests queued just before go out first
            # Answered after the attachedToTarget events of those requests, which created the arm tasks.
            await self.observer.client.send("Target.getTargets")
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)
        finally:
            self.settled.set()

    def attached(self, params: dict[str, Any]) -> None:
        """A target was attached (the observer's own bookkeeping is sent first, in `_attached`): intercept
        its requests, then let it run if it waits for us."""
        task = asyncio.create_task(self._arm(params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _arm(self, params: dict[str, Any]) -> None:
        session, kind = params["sessionId"], params["targetInfo"]["type"]
        client = self.observer.client
        try:
            if kind in INTERCEPTED:
                try:
                    await client.send("Fetch.enable", {"patterns": self.patterns}, session)
                except Exception:
                    # A target kind without Fetch (some workers): its requests go through its page's.
                    level = log.warning if kind in ("page", "iframe") else log.debug
                    level("traffic_fetch_unavailable", kind=kind, run_id=str(self.observer.run_id), exc_info=True)
        finally:
            if params.get("waitingForDebugger"):
                with contextlib.suppress(Exception):
                    client.send_nowait("Runtime.runIfWaitingForDebugger", None, session)

    def paused(self, params: dict[str, Any], session: str | None) -> None:
        """Fetch.requestPaused: refuse it (and record why) or let it go on untouched."""
        request = params.get("request") or {}
        url = request.get("url") or ""
        cdp_type = params.get("resourceType")
        verdict = self.rules.verdict(url, cdp_type, request.get("headers"))
        client = self.observer.client
        if verdict is None:
            client.send_nowait("Fetch.continueRequest", {"requestId": params["requestId"]}, session)
            return
        client.send_nowait(
            "Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"}, session
        )
        rule, matched = verdict
        self.observer.emit(
            "network.blocked",
            "network",
            {
                "requestId": params.get("networkId") or params["requestId"],
                "url": url_without_query(url),
                "method": request.get("method"),
                "resourceType": _our_type(cdp_type, request.get("headers") or {}),
                "rule": rule,
                "match": matched,
            },
            self.observer.page_of_session.get(session),
        )


def on_paused(observer, params: dict[str, Any], session: str | None) -> None:
    """The observer's handler of Fetch.requestPaused (only its own sessions enable Fetch)."""
    if observer.traffic is not None:
        observer.traffic.paused(params, session)

"""WebMCP passthrough: the tools a run's pages register with `document.modelContext.registerTool`
(Chromium's WebMCPTesting feature, on in every browser we launch), listed and invoked through the
browser's DevTools `WebMCP` domain (the DevToolsWebMCPSupport feature).

Nothing is kept between calls: each one opens its own DevTools connection to the browser, attaches to
its pages, enables the domain (which reports every tool registered so far) and lets go. So any replica
answers any call, and a page that registers or removes a tool is seen at the next listing.

A page is hostile code: what it registers and answers is capped (messages, tools, schemas, answers),
its tabs get one deadline together, and a name two frames register is never given to either alone, so
a call cannot land in a tool other than the one listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, replace
from typing import Any

import anyio
import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from app.cdp.client import CdpClient, CdpError

PAGE_TYPES = frozenset({"page"})
# The page gets this long to answer a call; a tool that waits for a person is the page's business.
INVOKE_TIMEOUT_SECONDS = 120.0
ATTACH_SECONDS = 10.0  # all the browser's tabs together
MESSAGE_LIMIT = 16 * 1024 * 1024  # one DevTools message from the browser
MAX_TOOLS = 200
SCHEMA_LIMIT = 64 * 1024  # a tool's input schema, as JSON
DESCRIPTION_LIMIT = 4096
ANSWER_LIMIT = 1024 * 1024  # a tool's answer, as JSON
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Unsupported(Exception):
    """This browser's Chromium has no DevTools WebMCP domain (older than the feature, or built without it)."""


class Unreachable(Exception):
    """The browser's DevTools socket could not be reached or went away."""


@dataclass(frozen=True)
class PageTool:
    name: str  # unique among the browser's tools (see `_unique`)
    registered_name: str  # as the page registered it
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]
    page_id: str
    frame_id: str
    url: str


@dataclass(frozen=True)
class Outcome:
    status: str  # Completed, Error or Canceled (the domain's InvocationStatus), TimedOut or Closed
    output: Any = None
    error: str | None = None  # the page's own text: for the caller, never for the run's events


class _Browser:
    """One DevTools connection to the browser, with the WebMCP events of each attached page."""

    def __init__(self) -> None:
        self.client: CdpClient | None = None
        self.tools: dict[str, list[dict[str, Any]]] = {}  # session -> toolsAdded entries
        self.responses: dict[str, dict[str, Any]] = {}  # invocation id -> toolResponded
        self.detached: set[str] = set()
        self.changed = asyncio.Event()

    def on_event(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if method == "WebMCP.toolsAdded" and session is not None:
            known = self.tools.setdefault(session, [])
            known.extend(params.get("tools", [])[: max(0, MAX_TOOLS - len(known))])
        elif method == "WebMCP.toolsRemoved" and session is not None:
            gone = {(t.get("name"), t.get("frameId")) for t in params.get("tools", [])}
            self.tools[session] = [t for t in self.tools.get(session, []) if (t["name"], t["frameId"]) not in gone]
        elif method == "WebMCP.toolResponded":
            self.responses[str(params.get("invocationId", ""))] = params
            self.changed.set()
        elif method == "Target.detachedFromTarget":
            self.detached.add(str(params.get("sessionId", "")))
            self.changed.set()

    async def _attach(self, info: dict[str, Any]) -> tuple[str, str, str] | None:
        assert self.client is not None
        try:
            attached = await self.client.send("Target.attachToTarget", {"targetId": info["targetId"], "flatten": True})
            session = attached["sessionId"]
            # Enabling reports the tools registered so far (`toolsAdded`) before it answers.
            await self.client.send("WebMCP.enable", None, session)
        except CdpError as exc:
            if "wasn't found" in str(exc):  # Chromium's answer to a method it does not have
                raise Unsupported(str(exc)) from None
            return None  # the page closed meanwhile
        except TimeoutError:
            return None  # a page that does not answer (hung, paused in a debugger) offers no tools
        return info["targetId"], session, str(info.get("url", ""))

    async def pages(self) -> list[tuple[str, str, str]]:
        """(target id, session id, url) of each page that answered within one deadline for all of them."""
        assert self.client is not None
        targets = (await self.client.send("Target.getTargets")).get("targetInfos", [])
        jobs = [asyncio.ensure_future(self._attach(i)) for i in targets if i.get("type") in PAGE_TYPES]
        if not jobs:
            return []
        done, late = await asyncio.wait(jobs, timeout=ATTACH_SECONDS)
        for job in late:
            job.cancel()
        found = []
        for job in jobs:
            if job in done:
                found.append(job.result())  # Unsupported is raised here
        return [page for page in found if page is not None]


@contextlib.asynccontextmanager
async def _connected(ws_url: str):
    browser = _Browser()
    try:
        browser.client = await CdpClient.open(ws_url, browser.on_event, max_size=MESSAGE_LIMIT)
    except (OSError, TimeoutError, ValueError, InvalidHandshake, InvalidURI) as exc:
        raise Unreachable(f"the browser's DevTools socket: {type(exc).__name__}") from None
    try:
        yield browser
    except (CdpError, OSError, ConnectionClosed) as exc:
        raise Unreachable(f"the browser's DevTools socket: {type(exc).__name__}") from None
    finally:
        with anyio.CancelScope(shield=True):  # a cancelled request still closes its socket
            await browser.client.close()


def _unique(tools: list[PageTool]) -> list[PageTool]:
    """A name registered once keeps it. A name two frames register goes to neither alone: each gets its
    page's (and if need be its frame's) id, so the name a caller picked from the list is the tool called."""
    counts: dict[str, int] = {}
    for tool in tools:
        counts[tool.name] = counts.get(tool.name, 0) + 1
    named, seen = [], set()
    for tool in tools:
        name = tool.name
        if counts[name] > 1:
            name = f"{tool.name}.{tool.page_id[:8]}"
            if name in seen:
                name = f"{name}.{tool.frame_id[:8]}"
        if name in seen:
            continue  # the same frame registered it twice: the first stands
        seen.add(name)
        named.append(replace(tool, name=name))
    return named


def _tools_of(browser: _Browser, pages: list[tuple[str, str, str]]) -> list[PageTool]:
    tools = []
    for page_id, session, url in pages:
        for entry in browser.tools.get(session, []):
            registered = str(entry.get("name", ""))[:128]
            schema = entry.get("inputSchema") or {"type": "object"}
            if not isinstance(schema, dict) or len(orjson.dumps(schema)) > SCHEMA_LIMIT:
                continue  # not a schema a client can use
            tools.append(
                PageTool(
                    name=_NAME_UNSAFE.sub("_", registered)[:64] or "tool",
                    registered_name=registered,
                    description=str(entry.get("description", ""))[:DESCRIPTION_LIMIT],
                    input_schema=schema,
                    annotations=entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {},
                    page_id=page_id,
                    frame_id=str(entry.get("frameId", "")),
                    url=url,
                )
            )
    return _unique(tools[:MAX_TOOLS])


async def list_tools(ws_url: str) -> list[PageTool]:
    async with _connected(ws_url) as browser:
        return _tools_of(browser, await browser.pages())


async def invoke(ws_url: str, name: str, arguments: dict[str, Any], timeout: float = INVOKE_TIMEOUT_SECONDS):
    """(the tool, its outcome); the tool is None when no page registers `name` (any more)."""
    async with _connected(ws_url) as browser:
        pages = await browser.pages()
        tool = next((t for t in _tools_of(browser, pages) if t.name == name), None)
        if tool is None:
            return None, None
        session = next(s for page_id, s, _url in pages if page_id == tool.page_id)
        started = await browser.client.send(
            "WebMCP.invokeTool",
            {"frameId": tool.frame_id, "toolName": tool.registered_name, "input": arguments},
            session,
        )
        invocation = str(started.get("invocationId", ""))
        return tool, await _answer(browser, session, invocation, timeout)


async def _answer(browser: _Browser, session: str, invocation: str, timeout: float) -> Outcome:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while invocation not in browser.responses:
        if session in browser.detached or browser.client.closed.is_set():
            return Outcome("Closed", error="The page closed before its tool answered")
        left = deadline - loop.time()
        if left <= 0:
            with contextlib.suppress(Exception):
                await browser.client.send("WebMCP.cancelInvocation", {"invocationId": invocation}, session)
            return Outcome("TimedOut", error=f"The page's tool did not answer within {timeout:g} s")
        browser.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(browser.changed.wait(), min(left, 1.0))
    answer = browser.responses[invocation]
    output = answer.get("output")
    try:
        size = len(orjson.dumps(output))
    except TypeError:  # not JSON as orjson knows it (an integer beyond 64 bits)
        size = ANSWER_LIMIT + 1
    if size > ANSWER_LIMIT:
        return Outcome("Error", error=f"The page's answer is larger than {ANSWER_LIMIT} bytes")
    return Outcome(str(answer.get("status", "Error")), output, str(answer.get("errorText") or "")[:2000] or None)

"""Holding a running browser for one API operation (a page, computer-use, clipboard or fetch call).

The operation takes the browser's controller as holder `api` (app/runtimes/controller.py) for its
duration and gives it back after, so it obeys the same lock as every other controller: while a CDP
client is attached to the run's connection, a human holds it from a view, or a task works in it, the
call is refused with 409 `browser.control_held`, and the message names the holder. Another API
operation on the same browser is waited for (briefly), not refused: callers are the same agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from app.browsing.links import Link
from app.cdp.client import CdpClient, CdpError
from app.core import ids
from app.core.context import AppContext, acting_channel
from app.core.errors import Conflict, DomainError
from app.locks import Holder
from app.runs import events
from app.runtimes import controller
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus

log = structlog.get_logger(__name__)

# An operation's hold: renewed while a long one (a batch, a slow navigation) runs.
HOLD_TTL_MS = 30_000
# How long an operation waits for another API operation of the same browser before it is refused.
WAIT_SECONDS = 15.0
# Page targets an API caller may see and act on (not the browser's own internal pages).
_INTERNAL = ("chrome://", "chrome-untrusted://", "devtools://", "chrome-extension://")

_WHO = {
    "connection": "a CDP client connected to the browser",
    "invocation": "an AI task working in the browser",
    "live_view": "a person through a live view",
    "api": "another API operation",
}


def control_held(runtime_id: uuid.UUID, holder: Holder) -> Conflict:
    """409 `browser.control_held` (our `runtime.controller_busy`), saying who holds the browser."""
    who = _WHO.get(holder.kind, holder.kind)
    busy = controller.controller_busy(runtime_id, holder)
    busy.message = f"The browser is controlled by {who} ({holder.kind} {holder.id}); try again when it lets go"
    return busy


@dataclass
class Held:
    """What an operation works with while it holds the browser."""

    ctx: AppContext
    runtime: Runtime
    run_id: uuid.UUID
    link: Link
    cdp: CdpClient
    token: str
    # Who asked (an API key id), for the run's record.
    actor: str | None = None

    @property
    def epoch(self) -> int:
        return int(self.token.rsplit(":", 1)[1])

    async def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0):
        try:
            return await self.cdp.send(method, params, session, timeout=timeout)
        except CdpError as exc:
            raise BrowserCallFailed(method, str(exc)) from exc
        except TimeoutError as exc:
            raise BrowserCallFailed(method, f"no answer within {timeout:g} s") from exc

    async def pages(self) -> list[dict[str, Any]]:
        """The browser's page targets, in the browser's order (internal pages left out)."""
        infos = (await self.send("Target.getTargets"))["targetInfos"]
        return [t for t in infos if t.get("type") == "page" and not str(t.get("url", "")).startswith(_INTERNAL)]

    async def session(self, target_id: str) -> str:
        """A flattened CDP session on the page, attached once and kept for the run."""
        session = self.link.sessions.get(target_id)
        if session is None:
            attached = await self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
            session = self.link.sessions[target_id] = attached["sessionId"]
        return session

    async def active_page(self) -> str:
        """The page computer-use actions go to: the last opened or activated through the API while it is
        open, else the browser's first page (one is opened when there is none)."""
        pages = await self.pages()
        if self.link.active_page and any(p["targetId"] == self.link.active_page for p in pages):
            return self.link.active_page
        if pages:
            self.link.active_page = pages[0]["targetId"]
        else:
            self.link.active_page = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        return self.link.active_page

    async def event(self, type: str, category: str, data: dict[str, Any], page_id: str | None = None) -> str:
        """Record a run event of this operation now, and return its id (the result's `eventId`)."""
        async with self.ctx.db.transaction() as s:
            extra = {"channel": channel} if (channel := acting_channel.get()) else {}
            row = await events.append(
                s,
                self.run_id,
                type,
                category,
                {**data, "epoch": self.epoch, "actor": self.actor, **extra},
                page_id=page_id,
            )
        return str(row.id)

    async def renew(self) -> None:
        async with self.ctx.db.transaction() as s:
            if not await controller.renew(self.ctx, s, self.runtime.id, self.token, HOLD_TTL_MS):
                raise control_held(self.runtime.id, controller.holder_of(self.runtime) or Holder("none", ""))


class BrowserCallFailed(DomainError):
    """The browser refused or did not answer a command of the operation."""

    status = 502
    code = "browser.command_failed"

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"The browser could not do {method}: {reason}", details={"method": method})


def _running(runtime: Runtime) -> None:
    if runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id is None:
        raise runtime_not_active(runtime.id, runtime.status, "The browser is not running; start it first")


async def _take(ctx: AppContext, runtime: Runtime, holder: Holder) -> tuple[Runtime, str]:
    """Take the controller, waiting in line behind another API operation; refuse any other holder."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        async with ctx.db.transaction() as s:
            fresh = await s.get(Runtime, runtime.id, populate_existing=True)
            if fresh is None:
                raise runtime_not_active(runtime.id)
            _running(fresh)
            try:
                token = await controller.take(ctx, s, fresh.id, holder, HOLD_TTL_MS)
                return fresh, token
            except Conflict as busy:
                current = controller.holder_of(fresh) or Holder("none", "")
                if current.kind != "api" or asyncio.get_running_loop().time() >= deadline:
                    raise control_held(fresh.id, current) from busy
        await asyncio.sleep(0.05)


async def _release(ctx: AppContext, runtime_id: uuid.UUID, token: str) -> None:
    try:
        async with ctx.db.transaction() as s:
            await controller.release(ctx, s, runtime_id, token)
    except Exception:  # the hold lapses with its TTL anyway
        log.warning("api_hold_release_failed", runtime_id=str(runtime_id), exc_info=True)


@contextlib.asynccontextmanager
async def hold(ctx: AppContext, runtime: Runtime, actor: str | None = None) -> AsyncIterator[Held]:
    """Hold the running browser for one operation: the controller (holder `api`) and the CDP link."""
    _running(runtime)
    link = ctx.browsing.link(runtime.active_run_id, (runtime.driver_state or {}).get("wsUrl", ""))
    try:
        await asyncio.wait_for(link.lock.acquire(), WAIT_SECONDS)
    except TimeoutError:
        raise control_held(runtime.id, Holder("api", "")) from None
    try:
        fresh, token = await _take(ctx, runtime, Holder("api", ids.new_id().hex))
        try:
            try:
                cdp = await link.connected()
            except Exception as exc:
                raise BrowserCallFailed("connect", f"the browser does not answer ({type(exc).__name__})") from exc
            yield Held(ctx, fresh, fresh.active_run_id, link, cdp, token, actor)
        finally:
            # Given back however the operation ended (an error, a cancelled request): never left held.
            await asyncio.shield(_release(ctx, fresh.id, token))
    finally:
        link.lock.release()

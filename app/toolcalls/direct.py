"""A tool called directly by a person (`POST /v1/tools/{toolRef}/calls`): the call runs in this process
in the background while the request answers with the record (after `wait` seconds at most).

A browser tool takes the browser's controller for the whole call (`app.browsing.access.hold`, holder
`api`): 409 `browser.control_held` before anything is recorded when a CDP client, a person or a task
holds it. The executors reach the page through Playwright over CDP, one connection per browser and
process (as the invocation worker does), the page being the browser's active page. Stagehand tools in
a direct call use the account's first enabled AI credential that names a default model.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from playwright.async_api import async_playwright
from sqlalchemy import select

from app.ai import service as ai
from app.ai.llm import LlmClient
from app.ai.models import AiConnection
from app.browsing import access
from app.core.context import AppContext
from app.core.errors import InvalidRequest
from app.invocations.engine import Engine, Reporter
from app.runtimes.models import Runtime
from app.toolcalls import executors, runners
from app.toolcalls.env import ToolEnv
from app.toolcalls.models import ToolCall

RENEW_SECONDS = 10.0

_background: set[asyncio.Task] = set()
_pw: Any = None
_pw_lock = asyncio.Lock()
_browsers: dict[str, Any] = {}


async def _browser(ws_url: str):
    global _pw
    async with _pw_lock:
        if _pw is None:
            _pw = await async_playwright().start()
        for url, known in list(_browsers.items()):
            if not known.is_connected():
                del _browsers[url]
        browser = _browsers.get(ws_url)
        if browser is None:
            browser = await _pw.chromium.connect_over_cdp(ws_url, timeout=15_000)
            _browsers[ws_url] = browser
        return browser


async def close() -> None:
    """Stop what this module started (tests, shutdown)."""
    global _pw
    for task in list(_background):
        task.cancel()
    if _background:
        await asyncio.wait(list(_background), timeout=10)
    if _pw is not None:
        with contextlib.suppress(Exception):
            await _pw.stop()
        _pw = None
        _browsers.clear()


async def _model_engine(ctx: AppContext, account_id: uuid.UUID, env: ToolEnv) -> tuple[Engine, LlmClient]:
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(AiConnection)
                .where(
                    AiConnection.account_id == account_id,
                    AiConnection.enabled.is_(True),
                    AiConnection.default_model.is_not(None),
                )
                .order_by(AiConnection.id)
                .limit(1)
            )
        ).scalar_one_or_none()
    if row is None:
        raise InvalidRequest(
            "Stagehand tools need an enabled AI credential with a default model (POST /v1/ai/credentials)",
            code="agent.model_unavailable",
        )
    llm = LlmClient()

    async def step(data: dict[str, Any]) -> None:
        env.emit("tool_call.step", data)

    async def llm_call(_reply, _model) -> None:
        return None

    return Engine(llm, ai.endpoint(ctx, row), Reporter(step=step, llm=llm_call, cancelled=env.cancelled)), llm


async def start(
    ctx: AppContext,
    *,
    account_id: uuid.UUID,
    space_id: uuid.UUID,
    tool: Any,
    input: dict[str, Any],
    runtime: Runtime | None,
    actor: dict[str, Any],
) -> ToolCall:
    """Record the call and run it in the background; returns the record once it exists (a browser
    tool's controller taken), or raises what stopped it from starting."""

    def emit(type: str, data: dict[str, Any]) -> None:
        if env.run_id is not None:
            ctx.events.emit(env.run_id, type, "tool_call", data, source="api")

    env = ToolEnv(
        account_id=account_id,
        space_id=space_id,
        runtime_id=runtime.id if runtime else None,
        run_id=runtime.active_run_id if runtime else None,
        emit=emit,
        actor=actor,
    )
    engine_llm: tuple[Engine, LlmClient] | None = None
    if tool.name.startswith("stagehand."):
        engine_llm = await _model_engine(ctx, account_id, env)
        env.engine = engine_llm[0]
    ready: asyncio.Future[ToolCall] = asyncio.get_running_loop().create_future()

    async def run_held() -> None:
        assert runtime is not None
        async with access.hold(ctx, runtime, actor=str(actor.get("keyId") or "api")) as held:
            ws_url = (held.runtime.driver_state or {}).get("wsUrl", "")

            async def page():
                browser = await _browser(ws_url)
                context = browser.contexts[0] if browser.contexts else await browser.new_context()
                wanted = None
                with contextlib.suppress(Exception):
                    wanted = await held.active_page()
                pages = [p for p in context.pages if not p.is_closed()]
                for candidate in pages:
                    if wanted and await runners.page_id(candidate) == wanted:
                        return candidate
                return pages[-1] if pages else await context.new_page()

            env.page = page
            row = await executors.begin(ctx, env, tool, input, "api")
            ready.set_result(row)

            async def renew() -> None:
                while True:
                    await asyncio.sleep(RENEW_SECONDS)
                    with contextlib.suppress(Exception):
                        await held.renew()

            keep = asyncio.create_task(renew())
            try:
                await executors.run(ctx, env, tool, input, row.id)
            finally:
                keep.cancel()
                if env.active_page_id:  # browser.pages.open/activate: the API's active page from now on
                    held.link.active_page = env.active_page_id

    async def run_free() -> None:
        row = await executors.begin(ctx, env, tool, input, "api")
        ready.set_result(row)
        await executors.run(ctx, env, tool, input, row.id)

    async def body() -> None:
        try:
            await (run_held() if tool.needs_browser and runtime is not None else run_free())
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
        finally:
            if engine_llm is not None:
                with contextlib.suppress(Exception):
                    await engine_llm[1].close()

    task = asyncio.create_task(body(), name="tool-call")
    _background.add(task)
    task.add_done_callback(_background.discard)
    return await ready

"""The task runner: registered with the invocation worker for provider "agent" (by the assembly), it
runs a claimed task to its end and records that end.

Engine "stagehand": our tool loop. The system prompt is the version's instructions; the model is given
the version's tools (resolved from the catalogue and the account's custom tools) and `done`, whose
input is the task's outputSchema (validated; one retry with the error, then `task.output_invalid`).
Each tool call goes through `app.toolcalls.executors.call_tool` (recorded, `tool_call.*` events, a
`human.request` suspends the task as `awaiting_input`). One step is one model turn; the step limit
(`task_step_limit`, 30) ends it `task.step_limit`; a cancel is honoured between steps; the timeout
(`task_timeout_seconds`, 600) ends it `timed_out`. A person's steering message is read at the next
step. Continuing a conversation feeds the model its earlier tasks' inputs and outputs.

Engine "browser-use": the browser-use subprocess the invocations use, on the task's browser.

A task given a browser drives it under the controller lock taken at its creation; a task whose tools
need a browser and was given none launches one in its space, takes its lock, and stops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import jsonschema
import orjson
import structlog
from referencing.exceptions import Unresolvable
from sqlalchemy import select, update

from app.accounts.service import Principal
from app.agents import service as agents
from app.agents.models import AgentVersion
from app.ai import service as ai_connections
from app.ai.llm import Endpoint, LlmError, Reply, Tool
from app.ai.models import AiConnection
from app.core import clock
from app.core.context import AppContext
from app.core.errors import DomainError
from app.invocations import browser_use_provider
from app.invocations.engine import Cancelled, Engine, EngineFailure, Reporter
from app.invocations.service import LOCK_TTL_MS
from app.invocations.worker import Live
from app.locks import Holder
from app.runs.command_models import TERMINAL_STATUSES, Command
from app.runs.models import Run
from app.runtimes import controller
from app.runtimes import service as runtimes
from app.runtimes.models import Runtime, RuntimeStatus
from app.runtimes.service import RuntimeSpec
from app.spaces.models import Space
from app.tasks import conversations, events
from app.tasks.models import Conversation
from app.toolcalls.env import ToolEnv
from app.toolcalls.executors import call_tool
from app.toolcalls.runners import HUMAN_DEFAULT_SECONDS
from app.tools import service as tools
from app.tools.service import ResolvedTool
from app.views import service as views
from app.views.models import View, ViewScopeKind

log = structlog.get_logger(__name__)

DEFAULT_SYSTEM = "You are an agent that completes the user's task with the tools you are given."
DONE = "done"
HUMAN_REQUEST = "human.request"
# A request's view outlives the request's own expiry by this much (it is revoked when the request ends).
VIEW_GRACE_SECONDS = 60
NO_ACCOUNT_KEY = uuid.UUID(int=0)  # a task acts for its account, not through an API key
# Wire status of each internal end, and the error code a status carries when nothing more precise does.
END_EVENTS = {
    "succeeded": "task.succeeded",
    "failed": "task.failed",
    "timed_out": "task.failed",
    "cancelled": "task.canceled",
}


@dataclass(frozen=True, slots=True)
class RequestView:
    view: View
    url: str


class TaskFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def step_limit(ctx: AppContext) -> int:
    return ctx.settings.task_step_limit


def llm_name(name: str) -> str:
    """A tool name the LLM formats accept (letters, digits, _ and -): `stagehand.act` -> `stagehand_act`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    if not schema:
        return {"type": "object", "properties": {}}
    return (
        schema
        if schema.get("type") == "object"
        else {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    )


def done_tool(output_schema: dict[str, Any] | None) -> Tool:
    if output_schema is None:
        parameters = {
            "type": "object",
            "properties": {"result": {"type": "string", "description": "The answer, or what was done"}},
            "required": ["result"],
        }
    else:
        parameters = object_schema(output_schema)
    return Tool(DONE, "Finish the task with its result", parameters)


def done_output(arguments: dict[str, Any], output_schema: dict[str, Any] | None) -> Any:
    if output_schema is None:
        return arguments.get("result")
    return arguments if output_schema.get("type") == "object" else arguments.get("value")


def validation_error(value: Any, schema: dict[str, Any] | None) -> str | None:
    if schema is None:
        return None
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return exc.message[:300]
    except jsonschema.SchemaError as exc:
        return f"outputSchema: {exc.message[:300]}"
    except Unresolvable as exc:  # a row made before references were checked at create
        return f"outputSchema: a reference cannot be resolved: {str(exc)[:200]}"
    return None


def input_text(value: Any) -> str:
    """A task input (a string, or parts: text, json, file) as the model's user message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if not isinstance(part, dict):
                parts.append(str(part))
            elif part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif part.get("type") == "json":
                parts.append(orjson.dumps(part.get("data")).decode())
            elif part.get("type") == "file":
                parts.append(f"(file {part.get('fileId')}: read it with files.read_text)")
        return "\n".join(parts)
    return orjson.dumps(value).decode()


def assistant_text(text: str) -> dict[str, Any]:
    """A text-only assistant turn in the neutral form, for either wire format."""
    return {
        "role": "assistant",
        "openai": {"role": "assistant", "content": text},
        "anthropic": {"role": "assistant", "content": [{"type": "text", "text": text}]},
    }


def result_text(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text[:20_000]


def task_actor(row: Command) -> dict[str, Any]:
    """Who acts when a task's tool uses the vault (its audit's `actor`), in the vault's own shape."""
    actor = {"kind": "task", "taskId": str(row.id)}
    if row.agent_id is not None:
        actor["agentId"] = str(row.agent_id)
    return actor


class TaskRunner:
    """One per server process; the worker calls `run` for each claimed task."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # --- the worker's interface ---

    async def run(self, row: Command, live: Live) -> None:
        run = _Run(self.ctx, row, live)
        await run.go()

    async def abandon(self, row: Command, error: dict[str, Any]) -> None:
        await finish(self.ctx, row.id, "failed", error=error)


async def finish(
    ctx: AppContext,
    task_id: uuid.UUID,
    status: str,
    *,
    output: Any = None,
    error: dict | None = None,
    usage: tuple[int, int] | None = None,
) -> bool:
    """Record the task's end (once): its lock let go, its conversation idle again, the output in the
    transcript; then the browser it launched is stopped and the end event written."""
    now = clock.now()
    async with ctx.db.transaction() as s:
        done = (
            await s.execute(
                update(Command)
                .where(Command.id == task_id, Command.status.not_in(TERMINAL_STATUSES))
                .values(
                    status=status,
                    output=output,
                    error=error,
                    finished_at=now,
                    updated_at=now,
                    input_request=None,
                    **({"input_tokens": usage[0], "output_tokens": usage[1]} if usage else {}),
                )
            )
        ).rowcount
        if not done:
            return False
        row = await s.get(Command, task_id, populate_existing=True)
        row.progress = {**(row.progress or {}), "message": status}
        if row.runtime_id is not None:
            await controller.release(ctx, s, row.runtime_id, row.lock_token)
        if row.conversation_id is not None and await s.get(Conversation, row.conversation_id) is not None:
            content = {"output": output} if status == "succeeded" else {"error": error, "status": status}
            await conversations.append(s, row.conversation_id, row.id, "output", content)
            await conversations.release(s, row.conversation_id, row.id)
    if row.launched_browser and row.runtime_id is not None:
        await _stop_launched(ctx, row)
    data: dict[str, Any] = {"steps": row.step_count}
    if error:
        data["error"] = error
    events.emit(ctx, row, END_EVENTS.get(status, f"task.{status}"), data)
    return True


async def _stop_launched(ctx: AppContext, row: Command, runtime_id: uuid.UUID | None = None) -> None:
    """Delete (stopping it) the browser the task launched: the row's, or `runtime_id` before the row has it."""
    try:
        async with ctx.db.read() as s:
            runtime = await s.get(Runtime, runtime_id or row.runtime_id)
        if runtime is not None and runtime.deleted_at is None:
            await runtimes.delete(ctx, runtime, force=True)
    except Exception:
        log.exception("task_browser_stop_failed", task_id=str(row.id))


class _Run:
    def __init__(self, ctx: AppContext, row: Command, live: Live) -> None:
        self.ctx, self.row, self.live = ctx, row, live
        self.worker = live.worker
        self.step = 0
        self.tokens_in = self.tokens_out = 0
        self.runtime: Runtime | None = None
        self.launched: Runtime | None = None  # the browser this task made, as soon as it exists
        # The timeout's clock: when the task began, how long it waited for people, since when it waits.
        self.began = asyncio.get_running_loop().time()
        self.waited = 0.0
        self.asked_at: float | None = None
        # Steering messages read (with each step's write) and not yet given to the model.
        self.steering: list[Any] = []

    # --- the whole task ---

    async def go(self) -> None:
        row = self.row
        events.emit(self.ctx, row, "task.started", {"model": (row.request or {}).get("model")})
        try:
            result = await self._within_timeout(self._work(), row.timeout_seconds or 600)
        except Cancelled:
            await self._finish("cancelled", error={"code": "task.canceled", "message": "Canceled"})
        except TimeoutError:
            await self._finish(
                "timed_out",
                error={"code": "task.timed_out", "message": f"Did not finish within {row.timeout_seconds} s"},
            )
        except TaskFailure as exc:
            await self._finish("failed", error={"code": exc.code, "message": exc.message})
        except EngineFailure as exc:
            await self._finish(
                "failed",
                error={"code": exc.code, "message": exc.message, **({"details": exc.details} if exc.details else {})},
            )
        except DomainError as exc:
            await self._finish("failed", error={"code": exc.code, "message": str(exc)})
        else:
            await self._finish("succeeded", output=result)

    async def _finish(self, status: str, **kwargs: Any) -> None:
        """The end, with every token spent (also those of a step that did not complete)."""
        await finish(self.ctx, self.row.id, status, usage=(self.tokens_in, self.tokens_out), **kwargs)

    async def _within_timeout(self, work, seconds: float) -> Any:
        """`work`'s result, or TimeoutError once it has run `seconds` not counting the time it waited for
        a person (a `human.request` may wait far longer than a task may compute)."""
        loop = asyncio.get_running_loop()
        job = asyncio.ensure_future(work)
        try:
            while True:
                waiting = self.waited + (loop.time() - self.asked_at if self.asked_at is not None else 0.0)
                left = seconds - (loop.time() - self.began - waiting)
                if self.asked_at is not None:
                    left = max(left, 1.0)  # waiting for a person: look again in a while
                done, _ = await asyncio.wait({job}, timeout=max(0.0, left))
                if done:
                    return job.result()
                if self.asked_at is None and loop.time() - self.began - self.waited >= seconds:
                    raise TimeoutError()
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(BaseException):
                    await job

    async def _work(self) -> Any:
        row = self.row
        async with self.ctx.db.read() as s:
            version = await s.get(AgentVersion, row.agent_version_id)
            connection = await s.get(AiConnection, uuid.UUID(row.request["connection"]))
        if version is None:
            raise TaskFailure("agent.version_not_found", "The agent version is gone")
        if connection is None or not connection.enabled:
            raise TaskFailure("agent.model_unavailable", "The AI credential is gone or disabled")
        endpoint = ai_connections.endpoint(self.ctx, connection, row.request["model"])
        resolved = [await tools.resolve(self.ctx, row.account_id, ref, space_id=row.space_id) for ref in version.tools]
        wants_browser = version.engine == agents.BROWSER_USE or any(t.needs_browser for t in resolved)
        if row.runtime_id is not None:
            await self._given_browser()
        elif wants_browser:
            await self._launch_browser()
        if version.engine == agents.BROWSER_USE:
            return await self._browser_use(endpoint)
        return await self._loop(version, endpoint, resolved)

    # --- browsers ---

    async def _given_browser(self) -> None:
        async with self.ctx.db.read() as s:
            runtime = await s.get(Runtime, self.row.runtime_id)
        if runtime is None or runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id != self.row.run_id:
            raise TaskFailure("browser.not_running", "The task's browser is no longer running")
        async with self.ctx.db.transaction() as s:
            held = await controller.renew(self.ctx, s, runtime.id, self.row.lock_token or "", LOCK_TTL_MS)
        if not held:
            raise TaskFailure("browser.control_held", "Another controller took the browser meanwhile")
        self.runtime = runtime

    async def _launch_browser(self) -> None:
        """Launch the task's own browser and record it on the task with its controller lock. Whatever
        stops this midway (the lock taken first by someone else, the timeout, a shutdown) stops the
        browser too: a launch, once begun, runs to its end (it is shielded), and what it started is
        deleted before the task records its end."""
        job = asyncio.ensure_future(self._launch_and_hold())
        try:
            await asyncio.shield(job)
        except BaseException:
            await asyncio.shield(asyncio.ensure_future(self._discard_launch(job)))
            raise
        async with self.ctx.db.read() as s:
            self.runtime = await s.get(Runtime, self.row.runtime_id)
        if self.live.cancelled() or await self._status() == "cancelling":
            raise Cancelled()

    async def _launch_and_hold(self) -> None:
        row = self.row
        async with self.ctx.db.read() as s:
            space = await s.get(Space, row.space_id)
        spec = RuntimeSpec(
            name=f"task-{row.id.hex[-12:]}",
            metadata={"taskId": str(row.id)},
            recording=True,
            name_unique=True,
            idle_timeout_seconds=max(60, (row.timeout_seconds or 600) + 60),
        )
        principal = Principal(row.account_id, NO_ACCOUNT_KEY)
        # Made first (stopped), launched next: from here on the browser is known, whatever fails later.
        self.launched = await runtimes.create(self.ctx, principal, space, spec, start=False)
        started = await runtimes.start(self.ctx, self.launched)
        runtime, run = started.runtime, started.run
        async with self.ctx.db.transaction() as s:
            token = await controller.take(self.ctx, s, runtime.id, Holder("invocation", row.id.hex), LOCK_TTL_MS)
            await s.execute(
                update(Command)
                .where(Command.id == row.id)
                .values(
                    runtime_id=runtime.id,
                    run_id=run.id,
                    lock_token=token,
                    launched_browser=True,
                    run_ids=[*(row.run_ids or []), str(run.id)],
                    updated_at=clock.now(),
                )
            )
        row.runtime_id, row.run_id, row.lock_token, row.launched_browser = runtime.id, run.id, token, True

    async def _discard_launch(self, job: asyncio.Future) -> None:
        """After a launch that did not complete: let it end, then delete (stopping) what it made."""
        with contextlib.suppress(BaseException):
            await job
        if self.launched is not None:
            await _stop_launched(self.ctx, self.row, self.launched.id)

    async def _page(self):
        browser = await self.worker.browser(self.runtime.driver_state["wsUrl"])
        context = browser.contexts[0] if browser.contexts else await browser.new_context()
        return context.pages[-1] if context.pages else await context.new_page()

    # --- bookkeeping ---

    async def _status(self) -> str:
        async with self.ctx.db.read() as s:
            return (await s.execute(select(Command.status).where(Command.id == self.row.id))).scalar_one()

    async def _record_step(self, data: dict[str, Any], transcript: list[tuple[str, Any]] = ()) -> None:
        """One step done: counts, tokens, progress and the step's transcript messages in one write; a
        cancel asked meanwhile stops here."""
        self.step += 1
        async with self.ctx.db.transaction() as s:
            await conversations.append_many(s, self.row.conversation_id, self.row.id, list(transcript))
            self.steering += await conversations.take_steering_in(s, self.row.conversation_id, self.row.id)
            status = (
                await s.execute(
                    update(Command)
                    .where(Command.id == self.row.id)
                    .values(
                        step_count=self.step,
                        input_tokens=self.tokens_in,
                        output_tokens=self.tokens_out,
                        progress={"step": self.step, "message": data.get("summary")},
                        heartbeat_at=clock.now(),
                        updated_at=clock.now(),
                    )
                    .returning(Command.status)
                )
            ).scalar_one()
        events.emit(self.ctx, self.row, "task.step", {"step": self.step, **data})
        if status == "cancelling" or status in TERMINAL_STATUSES:  # ended elsewhere: stop here
            self.live.cancel_seen.set()

    async def _llm(self, reply: Reply, model: str) -> None:
        self.tokens_in += reply.input_tokens
        self.tokens_out += reply.output_tokens
        events.emit(
            self.ctx,
            self.row,
            "task.llm_call",
            {
                "model": model,
                "inputTokens": reply.input_tokens,
                "outputTokens": reply.output_tokens,
                "latencyMs": reply.latency_ms,
                "toolCalls": [c.name for c in reply.tool_calls],
            },
        )

    async def _on_input_request(self, request: dict[str, Any] | None) -> None:
        loop = asyncio.get_running_loop()
        if request is not None:
            self.asked_at = loop.time()
        elif self.asked_at is not None:
            self.waited += loop.time() - self.asked_at
            self.asked_at = None
        self.worker.waiting(self.row.id, request is not None)
        now = clock.now()
        async with self.ctx.db.transaction() as s:
            if request is not None:
                wire = {
                    "id": request.get("id"),
                    "kind": "handoff" if request.get("handoff") else "question",
                    "summary": request.get("prompt") or "",
                    "schema": request.get("schema"),
                    "expiresAt": request.get("expiresAt"),
                    "viewUrl": request.get("viewUrl"),
                }
                await s.execute(
                    update(Command)
                    .where(Command.id == self.row.id, Command.status == "running")
                    .values(status="awaiting_input", input_request=wire, updated_at=now)
                )
            else:
                await s.execute(
                    update(Command)
                    .where(Command.id == self.row.id, Command.status == "awaiting_input")
                    .values(status="running", input_request=None, updated_at=now)
                )
        if request is not None:
            events.emit(self.ctx, self.row, "task.awaiting_input", {"requestId": request.get("id")})

    def _env(self, endpoint: Endpoint) -> ToolEnv:
        runtime = self.runtime
        engine = Engine(
            self.worker.llm,
            endpoint,
            Reporter(step=_no_step, llm=self._llm, cancelled=self.live.cancelled),
        )
        return ToolEnv(
            account_id=self.row.account_id,
            space_id=self.row.space_id,
            task_id=self.row.id,
            run_id=self.row.run_id,
            runtime_id=self.row.runtime_id,
            page=self._page if runtime is not None else None,
            engine=engine,
            cancelled=self.live.cancelled,
            on_input_request=self._on_input_request,
            emit=lambda type, data: events.emit(self.ctx, self.row, type, data),
            actor=task_actor(self.row),
            span_id=None,
        )

    # --- engine "stagehand": the tool loop ---

    async def _history(self) -> list[dict[str, Any]]:
        """The conversation's earlier tasks: each one's input, and its output (or how it ended)."""
        messages: list[dict[str, Any]] = []
        for message in await conversations.transcript(self.ctx, self.row.conversation_id, self.row.id):
            content = message.content or {}
            if message.kind in ("input", "steer"):
                messages.append({"role": "user", "text": input_text(content.get("input"))})
            elif message.kind == "output":
                if "output" in content:
                    messages.append(assistant_text(f"Result: {result_text(content['output'])}"))
                else:
                    messages.append(assistant_text(f"(That task ended {content.get('status')}.)"))
        return messages

    async def _loop(self, version: AgentVersion, endpoint: Endpoint, resolved: list[ResolvedTool]) -> Any:
        row = self.row
        by_name = {llm_name(t.name): t for t in resolved}
        llm_tools = [Tool(name, t.description, object_schema(t.input_schema)) for name, t in by_name.items()]
        llm_tools.append(done_tool(row.output_schema))
        system = (version.instructions or DEFAULT_SYSTEM) + (
            "\n\nWork step by step with the tools. When the task is complete, or cannot be completed, call done."
        )
        messages = await self._history()
        messages.append({"role": "user", "text": input_text(row.task_input)})
        env = self._env(endpoint)
        limit = step_limit(self.ctx)
        output_retried = False
        while True:
            if self.live.cancelled():
                raise Cancelled()
            if self.step >= limit:
                raise TaskFailure("task.step_limit", f"The agent did not finish within {limit} steps")
            if self.step == 0:  # sent while it was queued; later ones come with each step's write
                self.steering += await conversations.take_steering(self.ctx, row.conversation_id, row.id)
            for steer in self.steering:
                messages.append({"role": "user", "text": f"Message from the user: {input_text(steer)}"})
            self.steering = []
            started = time.perf_counter()
            try:
                reply = await self.worker.llm.chat(endpoint, system, messages, llm_tools, require_tool=True)
            except LlmError as exc:
                raise TaskFailure("task.llm_failed", exc.message) from None
            await self._llm(reply, endpoint.model)
            messages.append(reply.assistant)
            transcript: list[tuple[str, Any]] = [("assistant", reply.assistant)]
            if not reply.tool_calls:
                messages.append({"role": "user", "text": "Answer with a tool call; call done when finished."})
                await self._record_step({"summary": (reply.text or "")[:300], "tools": []}, transcript)
                continue
            finished, output = False, None
            for call in reply.tool_calls:
                if call.name == DONE:
                    output = done_output(call.arguments, row.output_schema)
                    problem = validation_error(output, row.output_schema)
                    if problem is None:
                        finished = True
                        content = "finished"
                    elif output_retried:
                        raise TaskFailure(
                            "task.output_invalid", f"The agent's output does not match outputSchema: {problem}"
                        )
                    else:
                        output_retried = True
                        content = f"That output does not match the output schema: {problem}. Call done again."
                else:
                    content = await self._tool(env, by_name.get(call.name), call.name, call.arguments)
                messages.append({"role": "tool", "id": call.id, "content": content})
                transcript.append(("tool", {"role": "tool", "id": call.id, "content": content}))
                if finished:
                    break
            await self._record_step(
                {
                    "summary": (reply.text or "")[:300],
                    "tools": [c.name for c in reply.tool_calls],
                    "elapsedMs": int((time.perf_counter() - started) * 1000),
                },
                transcript,
            )
            if finished:
                return output

    async def _tool(self, env: ToolEnv, tool: ResolvedTool | None, name: str, arguments: dict[str, Any]) -> str:
        if tool is None:
            return f"There is no tool named {name!r}."
        view = await self._request_view(tool, arguments)
        env.view_url = view.url if view is not None else None
        try:
            outcome = await call_tool(self.ctx, env, tool, arguments, caller_type="agent")
        finally:
            env.view_url = None
            if view is not None:
                await asyncio.shield(asyncio.ensure_future(self._end_view(view)))
        if self.live.cancelled():
            raise Cancelled()
        if outcome.ok:
            return result_text(outcome.result if outcome.result is not None else "ok")
        error = outcome.error or {}
        return f"The tool failed ({error.get('code', 'tool.failed')}): {error.get('message', '')}"[:2000]

    # --- a person's view of the task's browser while it asks them ---

    async def _request_view(self, tool: ResolvedTool, arguments: dict[str, Any]) -> RequestView | None:
        """For a `human.request` of a task driving a browser: a view of the task's run with `control`, so
        the person asked can watch the browser and answer on the view's page (its URL is the request's
        `viewUrl`). It lives as long as the request: it expires with it and is revoked when it ends."""
        if tool.kind != "builtin" or tool.name != HUMAN_REQUEST or self.runtime is None or self.row.run_id is None:
            return None
        row = self.row
        try:
            seconds = int(arguments.get("timeoutSeconds") or HUMAN_DEFAULT_SECONDS)
        except (TypeError, ValueError):
            return None  # the call refuses that input itself
        try:
            async with self.ctx.db.read() as s:
                space = await s.get(Space, row.space_id)
                run = await s.get(Run, row.run_id)
            if space is None or run is None:
                return None
            minted = await views.create(
                self.ctx,
                Principal(row.account_id, NO_ACCOUNT_KEY),
                views.ViewSpec(
                    scope=views.ViewScope(ViewScopeKind.RUN, space, run=run),
                    components={},
                    control=True,
                    expires_in_seconds=min(views.MAX_EXPIRY_SECONDS, max(60, seconds) + VIEW_GRACE_SECONDS),
                ),
            )
        except DomainError as exc:  # the run ended meanwhile: the request goes out without a view
            log.info("task_request_view_unavailable", task_id=str(row.id), code=exc.code)
            return None
        return RequestView(minted.view, views.page_url(self.ctx, minted.token))

    async def _end_view(self, view: RequestView) -> None:
        try:
            await views.revoke(self.ctx, view.view)
        except DomainError:
            pass  # revoked already (by the account)
        except Exception:
            log.exception("task_request_view_revoke_failed", task_id=str(self.row.id))

    # --- engine "browser-use" ---

    async def _browser_use(self, endpoint: Endpoint) -> Any:
        row = self.row
        shim = SimpleNamespace(
            id=row.id,
            run_id=row.run_id,
            request={
                "instruction": input_text(row.task_input),
                "maxSteps": step_limit(self.ctx),
                **({"outputSchema": row.output_schema} if row.output_schema is not None else {}),
            },
        )

        async def step(data: dict[str, Any]) -> None:
            await self._record_step({"summary": data.get("reasoning"), "tools": [data.get("action")]})
            if self.live.cancelled():
                raise Cancelled()

        reporter = Reporter(step=step, llm=self._llm, cancelled=self.live.cancelled)
        result = await browser_use_provider.run(self.ctx, self.runtime, shim, endpoint, reporter)
        if result.get("success") is False:
            raise TaskFailure(
                "task.failed", f"browser-use did not complete the task: {str(result.get('result'))[:300]}"
            )
        value = result.get("result")
        if row.output_schema is not None:
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                value = orjson.loads(value)
        return value


async def _no_step(_data: dict[str, Any]) -> None:
    return None

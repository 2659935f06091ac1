"""Runs queued durable commands: invocations, and whatever a package registered a runner for by
provider (tasks: provider "agent", registered by the assembly, so this module never imports
app.tasks). Every server process has a worker; a row is claimed by a conditional update (queued ->
running, naming this process), so exactly one process runs it, on PostgreSQL or SQLite alike. While it
runs (also while a task is `awaiting_input`: live, not claimable), the worker sends a heartbeat,
renews the controller lock when the row holds a browser, and notices a cancel request. Rows left live
by a process that died are failed by any other's sweep (no heartbeat for 30 s; a registered runner
records its own end); rows still `queued` are simply picked up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import structlog
from playwright.async_api import async_playwright
from sqlalchemy import or_, select, update

from app.ai import service as ai_connections
from app.ai.llm import LlmClient, Reply
from app.ai.models import AiConnection
from app.core import background, clock
from app.core.context import AppContext
from app.invocations import browser_use_provider
from app.invocations.engine import Cancelled, Engine, EngineFailure, Reporter
from app.invocations.service import LOCK_TTL_MS
from app.runs import events
from app.runs.command_models import LIVE_STATUSES, Command
from app.runs.command_models import TERMINAL_STATUSES as TERMINAL
from app.runtimes import controller
from app.runtimes.models import Runtime, RuntimeStatus

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 5
MAX_CONCURRENT = 4
# How often a running row's status is read for a cancel request (a cheap read by primary key).
CANCEL_POLL_SECONDS = 0.5


@dataclass
class Live:
    """What the worker gives a registered runner for one row: `cancelled()` turns True once a cancel
    was requested (seen by the worker's watch), and the worker itself (its LLM client, its browser
    connections)."""

    worker: InvocationWorker
    cancel_seen: asyncio.Event = field(default_factory=asyncio.Event)

    def cancelled(self) -> bool:
        return self.cancel_seen.is_set()


class Runner(Protocol):
    """A kind of durable row the worker runs (registered by provider)."""

    async def run(self, row: Command, live: Live) -> None:
        """Run the claimed row (status running) to its end and record that end (never leave it live)."""

    async def abandon(self, row: Command, error: dict[str, Any]) -> None:
        """Record as failed with `error` a row whose process died or that the runner let escape."""


class InvocationWorker:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.instance = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._loop: asyncio.Task | None = None
        self._running: dict[uuid.UUID, asyncio.Task] = {}
        # While set, this process claims nothing new (what it runs goes on): another process, or this one
        # later, takes the queue. Tests that look at queued rows set it.
        self.paused = False
        # Rows whose runner waits for a person (a task's human.request, up to a day): they hold no slot.
        self._waiting: set[uuid.UUID] = set()
        self.llm = LlmClient()
        # One Playwright driver for the process (starting one costs hundreds of milliseconds), each
        # invocation its own CDP connection to its runtime's browser.
        self._pw = None
        self._pw_lock = asyncio.Lock()
        # CDP connections kept per browser between invocations (connecting costs tens of milliseconds);
        # a runtime runs one invocation at a time, so they are never shared by two at once.
        self._browsers: dict[str, Any] = {}
        self.runners: dict[str, Runner] = {}

    def register(self, provider: str, runner: Runner) -> None:
        """Rows of `provider` are run by `runner` (the assembly registers them before `start`)."""
        self.runners[provider] = runner

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.recover()
        self._loop = asyncio.create_task(self._claim_forever(), name="invocation-worker")

    async def stop(self) -> None:
        await background.stop(self._loop)
        # In flight at shutdown: they end `failed` (interrupted) here, not `running` forever.
        claimed = list(self._running)
        for task in list(self._running.values()):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=10)
        # A task cancelled before it reached its own handler (still reading its row on a loaded host), or
        # one slower than the wait, is failed here: a claimed row never outlives its process `running`.
        try:
            await self._fail_live(claimed, "The server shut down while it ran; run it again")
        except Exception:  # the rest of the shutdown must go on; the next start's recovery fails them
            log.exception("invocation_shutdown_fail_failed")
        await self.llm.close()
        if self._pw is not None:
            with contextlib.suppress(Exception):
                await self._pw.stop()

    async def browser(self, ws_url: str):
        async with self._pw_lock:
            if self._pw is None:
                self._pw = await async_playwright().start()
            for url, known in list(self._browsers.items()):
                if not known.is_connected():
                    del self._browsers[url]  # its runtime stopped
            browser = self._browsers.get(ws_url)
            if browser is None:
                browser = await self._pw.chromium.connect_over_cdp(ws_url, timeout=15_000)
                self._browsers[ws_url] = browser
            return browser

    async def _claim_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            self._wake.clear()
            try:
                await self._claim()
            except Exception:
                log.exception("invocation_claim_failed")

    async def _claim(self) -> None:
        free = MAX_CONCURRENT - len(self._running.keys() - self._waiting)
        if free <= 0 or self.paused:
            return
        async with self.ctx.db.transaction() as s:
            candidates = (
                (
                    await s.execute(
                        select(Command.id)
                        .where(Command.execution_mode == "durable", Command.status == "queued")
                        .order_by(Command.id)
                        .limit(free)
                    )
                )
                .scalars()
                .all()
            )
        for invocation_id in candidates:
            now = clock.now()
            async with self.ctx.db.transaction() as s:
                claimed = (
                    await s.execute(
                        update(Command)
                        .where(Command.id == invocation_id, Command.status == "queued")
                        .values(
                            status="running", worker=self.instance, started_at=now, heartbeat_at=now, updated_at=now
                        )
                    )
                ).rowcount
            if claimed:
                task = asyncio.create_task(self._run(invocation_id), name=f"invocation-{invocation_id}")
                self._running[invocation_id] = task
                task.add_done_callback(lambda _t, i=invocation_id: self._forget(i))

    def _forget(self, command_id: uuid.UUID) -> None:
        self._running.pop(command_id, None)
        self._waiting.discard(command_id)

    def waiting(self, command_id: uuid.UUID, yes: bool) -> None:
        """A runner says its row waits for a person, or no longer does: a waiting row holds none of the
        MAX_CONCURRENT slots, so tasks waiting on answers never stop this process claiming the queue."""
        if yes:
            self._waiting.add(command_id)
        else:
            self._waiting.discard(command_id)
            return
        self.wake()

    async def recover(self) -> None:
        """Fail invocations whose process stopped sending heartbeats, and free their locks."""
        cutoff = clock.now() - timedelta(seconds=self.ctx.settings.invocation_dead_after_seconds)
        async with self.ctx.db.transaction() as s:
            rows = list(
                (
                    await s.execute(
                        select(Command).where(
                            Command.execution_mode == "durable",
                            Command.status.in_(LIVE_STATUSES),
                            or_(Command.heartbeat_at.is_(None), Command.heartbeat_at < cutoff),
                        )
                    )
                ).scalars()
            )
        await self._fail(rows, "The server process running it stopped; run it again")

    async def _fail_live(self, command_ids: list[uuid.UUID], message: str) -> None:
        if not command_ids:
            return
        async with self.ctx.db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(Command).where(Command.id.in_(command_ids), Command.status.in_(LIVE_STATUSES))
                    )
                ).scalars()
            )
        await self._fail(rows, message)

    async def _fail(self, rows: list[Command], message: str) -> None:
        """End rows no process works on any more `failed`: a registered runner's its own way (its lock,
        conversation and browser let go), an invocation's here. Ending is once: a row already ended stays."""
        for row in rows:
            runner = self.runners.get(row.provider or "")
            if runner is not None:
                await self._abandon(runner, row, {"code": "task.failed", "message": message})
                continue
            try:
                await self._finish(row.id, "failed", error={"code": "invocation.failed", "message": message})
            except Exception:
                log.exception("invocation_fail_failed", invocation_id=str(row.id))

    # --- one invocation ---

    async def _run(self, invocation_id: uuid.UUID) -> None:
        async with self.ctx.db.read() as s:
            provider = (await s.execute(select(Command.provider).where(Command.id == invocation_id))).scalar_one()
        runner = self.runners.get(provider or "")
        if runner is not None:
            await self._run_registered(runner, invocation_id)
            return
        async with self.ctx.db.transaction() as s:
            row = await s.get(Command, invocation_id)
            runtime = await s.get(Runtime, row.runtime_id)
            connection = await s.get(AiConnection, uuid.UUID(row.request["connection"]))
        cancel_seen = asyncio.Event()
        try:
            if runtime is None or runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id != row.run_id:
                raise EngineFailure("invocation.dispatch_unavailable", "The runtime is no longer active")
            if not await self._hold_lock(row):
                raise EngineFailure("runtime.controller_busy", "Another controller took the runtime meanwhile")
            if connection is None or not connection.enabled:
                raise EngineFailure("invocation.dispatch_preparation_failed", "The AI connection is gone or disabled")
            self._emit(row, "invocation.started", {"model": row.request["model"], "method": row.method})
            endpoint = ai_connections.endpoint(self.ctx, connection, row.request["model"])
            reporter = Reporter(
                step=lambda data: self._step(row, data),
                llm=lambda reply, model: self._llm(row, reply, model),
                cancelled=cancel_seen.is_set,
            )
            if row.provider == "browserUse":
                work = browser_use_provider.run(self.ctx, runtime, row, endpoint, reporter)
            else:
                work = Engine(self.llm, endpoint, reporter).run(
                    lambda: self.browser(runtime.driver_state["wsUrl"]), row.method, row.request
                )
            beat = asyncio.create_task(self._heartbeat(row, cancel_seen))
            try:
                result = await asyncio.wait_for(work, row.timeout_seconds or 300)
            finally:
                beat.cancel()
            await self._finish(row.id, "succeeded", result=result)
        except Cancelled:
            await self._finish(row.id, "cancelled", error={"code": "invocation.cancelled", "message": "Cancelled"})
        except TimeoutError:
            await self._finish(
                row.id,
                "timed_out",
                error={"code": "invocation.timed_out", "message": f"Did not finish within {row.timeout_seconds} s"},
            )
        except EngineFailure as exc:
            await self._finish(
                row.id,
                "failed",
                error={"code": exc.code, "message": exc.message, **({"details": exc.details} if exc.details else {})},
            )
        except asyncio.CancelledError:
            await asyncio.shield(
                self._finish(
                    row.id,
                    "failed",
                    error={"code": "invocation.failed", "message": "The server shut down while it ran; run it again"},
                )
            )
            raise
        except Exception as exc:
            log.exception("invocation_crashed", invocation_id=str(invocation_id))
            await self._finish(
                row.id,
                "failed",
                error={"code": "invocation.failed", "message": f"Internal error: {type(exc).__name__}"},
            )

    async def _run_registered(self, runner: Runner, command_id: uuid.UUID) -> None:
        async with self.ctx.db.read() as s:
            row = await s.get(Command, command_id)
        live = Live(self)
        beat = asyncio.create_task(self._keep_alive(command_id, live.cancel_seen))
        try:
            await runner.run(row, live)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._abandon(
                    runner,
                    row,
                    {"code": "task.failed", "message": "The server shut down while it ran; run it again"},
                )
            )
            raise
        except Exception as exc:
            log.exception("durable_run_crashed", command_id=str(command_id))
            await self._abandon(
                runner, row, {"code": "task.failed", "message": f"Internal error: {type(exc).__name__}"}
            )
        finally:
            beat.cancel()

    async def _abandon(self, runner: Runner, row: Command, error: dict[str, Any]) -> None:
        try:
            await runner.abandon(row, error)
        except Exception:
            log.exception("durable_abandon_failed", command_id=str(row.id))

    async def _keep_alive(self, command_id: uuid.UUID, cancel_seen: asyncio.Event) -> None:
        """A registered runner's row: the heartbeat (and the lock's renewal only while the row holds a
        browser: runtime and token, read afresh since a task may launch its browser later), and the
        cancel request seen within CANCEL_POLL_SECONDS."""
        beat_every = min(HEARTBEAT_SECONDS, self.ctx.settings.invocation_dead_after_seconds / 3)
        loop = asyncio.get_running_loop()
        next_beat = 0.0
        while True:
            beating = loop.time() >= next_beat
            try:
                status = await self._beat(command_id, beating)
            except Exception:  # a database hiccup must not stop the heartbeat for good
                log.warning("durable_heartbeat_failed", command_id=str(command_id), exc_info=True)
                await asyncio.sleep(CANCEL_POLL_SECONDS)
                continue
            if beating:
                next_beat = loop.time() + beat_every
            if status == "cancelling":
                cancel_seen.set()
            if status in TERMINAL:
                cancel_seen.set()  # ended elsewhere (another process's recovery): stop working on it here
                return
            await asyncio.sleep(CANCEL_POLL_SECONDS)

    async def _beat(self, command_id: uuid.UUID, heartbeat: bool) -> str:
        """The row's status; with `heartbeat`, also its heartbeat and its browser lock's renewal."""
        if not heartbeat:
            async with self.ctx.db.read() as s:
                return (await s.execute(select(Command.status).where(Command.id == command_id))).scalar_one()
        async with self.ctx.db.transaction() as s:
            status, runtime_id, token = (
                await s.execute(
                    update(Command)
                    .where(Command.id == command_id)
                    .values(heartbeat_at=clock.now())
                    .returning(Command.status, Command.runtime_id, Command.lock_token)
                )
            ).one()
            if runtime_id is not None and token:
                await controller.renew(self.ctx, s, runtime_id, token, LOCK_TTL_MS)
        return status

    async def _hold_lock(self, row: Command) -> bool:
        """Whether the invocation still controls its runtime (the runtime row says; a lost cache does not matter)."""
        if not row.lock_token:
            return False
        async with self.ctx.db.transaction() as s:
            return await controller.renew(self.ctx, s, row.runtime_id, row.lock_token, LOCK_TTL_MS)

    async def _heartbeat(self, row: Command, cancel_seen: asyncio.Event) -> None:
        while True:
            async with self.ctx.db.transaction() as s:
                status = (
                    await s.execute(
                        update(Command)
                        .where(Command.id == row.id)
                        .values(heartbeat_at=clock.now())
                        .returning(Command.status)
                    )
                ).scalar_one()
                await controller.renew(self.ctx, s, row.runtime_id, row.lock_token, LOCK_TTL_MS)
            if status == "cancelling":
                cancel_seen.set()
            beat = min(HEARTBEAT_SECONDS, self.ctx.settings.invocation_dead_after_seconds / 3)
            await asyncio.sleep(beat if not cancel_seen.is_set() else 60)

    def _emit(self, row: Command, type: str, data: dict[str, Any]) -> None:
        self.ctx.events.emit(row.run_id, type, "invocation", {"invocationId": str(row.id), **data}, source="api")

    async def _step(self, row: Command, data: dict[str, Any]) -> None:
        async with self.ctx.db.transaction() as s:
            count = (
                await s.execute(
                    update(Command)
                    .where(Command.id == row.id)
                    .values(step_count=Command.step_count + 1, heartbeat_at=clock.now())
                    .returning(Command.step_count)
                )
            ).scalar_one()
            await s.execute(
                update(Command)
                .where(Command.id == row.id)
                .values(
                    progress={
                        "step": count,
                        "totalSteps": row.request.get("maxSteps"),
                        "currentCall": data.get("action"),
                        "message": data.get("reasoning"),
                    }
                )
            )
            status = (await s.execute(select(Command.status).where(Command.id == row.id))).scalar_one()
        self._emit(row, "invocation.step", {"step": count, **{k: v for k, v in data.items() if k != "step"}})
        if status == "cancelling":
            raise Cancelled()

    async def _llm(self, row: Command, reply: Reply, model: str) -> None:
        self._emit(
            row,
            "invocation.llm_call",
            {
                "model": model,
                "inputTokens": reply.input_tokens,
                "outputTokens": reply.output_tokens,
                "latencyMs": reply.latency_ms,
                "toolCalls": [c.name for c in reply.tool_calls],
            },
        )
        if reply.input_tokens or reply.output_tokens:
            # Kept on the row as tasks keep theirs, so usage counts them (events may be dropped under load).
            async with self.ctx.db.transaction() as s:
                await s.execute(
                    update(Command)
                    .where(Command.id == row.id)
                    .values(
                        input_tokens=Command.input_tokens + reply.input_tokens,
                        output_tokens=Command.output_tokens + reply.output_tokens,
                    )
                )

    async def _finish(
        self, invocation_id: uuid.UUID, status: str, *, result: dict | None = None, error: dict | None = None
    ) -> None:
        # The conditional update comes first: on SQLite a transaction that read before writing can be
        # refused its write when another connection committed meanwhile.
        async with self.ctx.db.transaction() as s:
            done = (
                await s.execute(
                    update(Command)
                    .where(Command.id == invocation_id, Command.status.not_in(TERMINAL))
                    .values(status=status, result=result, error=error, finished_at=clock.now())
                )
            ).rowcount
            if done:
                row = await s.get(Command, invocation_id)
                row.progress = {**(row.progress or {}), "message": status}
                await events.append(
                    s,
                    row.run_id,
                    f"invocation.{status}",
                    "invocation",
                    {
                        "invocationId": str(invocation_id),
                        **({"error": error} if error else {}),
                        "steps": row.step_count,
                    },
                )
                # Let go in the same transaction: a run connection it took the runtime from gets it back.
                await controller.release(self.ctx, s, row.runtime_id, row.lock_token)

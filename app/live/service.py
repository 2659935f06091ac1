"""Live view and recording leases: who may watch (or drive) a run, and the viewer session itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, NotFound
from app.live import frames as recorded_frames
from app.live import input as viewer_input
from app.live import tokens
from app.live.models import Recording, Viewer
from app.live.models import RecordingStatus as RS
from app.live.recorder import recording_duration_ms
from app.live.screencast import Frame, Subscriber
from app.locks import Holder
from app.runs import activity as activity_items
from app.runs import service as runs
from app.runs.models import Run, RunEvent, RunStatus
from app.runtimes import controller
from app.runtimes.models import Runtime, RuntimeStatus

log = structlog.get_logger(__name__)

# An input viewer holds the controller lock this long past its last renewal; the page renews it
# while open, so a closed tab or a dead server frees the runtime within this time.
CONTROL_TTL_MS = 30_000
CONTROL_RENEW_SECONDS = 10
# Between minting an input lease and its page connecting, the lock is held for it this long.
OPEN_GRACE_MS = 60_000


@dataclass
class Minted:
    url: str
    expires_at: float
    token: tokens.ViewerToken


def iso_epoch(epoch: float) -> str:
    return clock.iso(datetime.fromtimestamp(epoch, UTC))


def _expiry(seconds: int) -> float:
    return time.time() + seconds


def _view_url(ctx: AppContext, page: str, raw: str) -> str:
    return f"{ctx.settings.resolved_public_url}/{page}?token={raw}"


async def _active_runtime(ctx: AppContext, run: Run) -> Runtime:
    async with ctx.db.read() as s:
        runtime = await s.get(Runtime, run.runtime_id)
    if (
        run.status != RunStatus.ACTIVE
        or runtime is None
        or runtime.active_run_id != run.id
        or runtime.status != RuntimeStatus.ACTIVE
        or not (runtime.driver_state or {}).get("wsUrl")
    ):
        raise Conflict(
            "The run is not active, so there is nothing live to watch",
            code="run.live_not_active",
            details={"runId": str(run.id), "status": run.status},
        )
    return runtime


async def mint_live(ctx: AppContext, run: Run, control: str, expires_in: int) -> Minted:
    runtime = await _active_runtime(ctx, run)
    viewer_id = ids.new_id()
    token = tokens.ViewerToken(
        kind="live",
        viewer_id=viewer_id,
        run_id=run.id,
        account_id=run.account_id,
        control=control,
        expires_at=_expiry(expires_in),
    )
    # An input link takes the controller in the transaction that records it: it fails with
    # runtime.controller_busy while a CDP lease (or an invocation) controls the browser, and is held
    # for the page to connect, which then keeps it while it is open.
    await _record_viewer(ctx, token, take_control=runtime.id if control == "input" else None)
    ctx.events.emit(
        run.id,
        "live.created",
        "live",
        {"viewerId": str(viewer_id), "control": control, "expiresAt": iso_epoch(token.expires_at)},
        source="api",
    )
    return Minted(_view_url(ctx, "live", tokens.mint(ctx.signing_key, token)), token.expires_at, token)


# Standing links of a run (the current generation's `connections.liveViewUrl`): valid while the run is
# active, and at most this long.
RUN_LINK_SECONDS = 7 * 86_400


async def run_links(ctx: AppContext, run: Run) -> dict[str, str]:
    """The run's two standing live-view links, `input` (take control) and `none` (watch): the same URL
    on every read, recorded once (so they can be revoked like any other link). The input link takes
    control when its page opens, under the controller lock, not when it is minted."""
    wanted = {
        control: tokens.ViewerToken(
            kind="live",
            viewer_id=uuid.uuid5(run.id, f"live:{control}"),
            run_id=run.id,
            account_id=run.account_id,
            control=control,
            expires_at=float(int(run.started_at.timestamp()) + RUN_LINK_SECONDS),
        )
        for control in ("input", "none")
    }
    async with ctx.db.read() as s:
        known = set((await s.execute(select(Viewer.id).where(Viewer.run_id == run.id))).scalars())
    for token in wanted.values():
        if token.viewer_id not in known:
            with contextlib.suppress(IntegrityError):  # two first reads raced: the other recorded it
                await _record_viewer(ctx, token)
    return {control: _view_url(ctx, "live", tokens.mint(ctx.signing_key, t)) for control, t in wanted.items()}


# --- recording ---


async def recording_of(ctx: AppContext, run: Run) -> tuple[str, int, Recording | None]:
    async with ctx.db.read() as s:
        row = await s.get(Recording, run.id)
    if row is None:
        status = RS.PREPARING if run.recording and run.status == RunStatus.ACTIVE else RS.NOT_AVAILABLE
        return status, 0, None
    return row.status, recording_duration_ms(run, row), row


async def mint_recording(ctx: AppContext, run: Run, expires_in: int) -> tuple[Minted, dict]:
    status, duration_ms, row = await recording_of(ctx, run)
    token = tokens.ViewerToken(
        kind="replay",
        viewer_id=ids.new_id(),
        run_id=run.id,
        account_id=run.account_id,
        control="none",
        expires_at=_expiry(expires_in),
    )
    await _record_viewer(ctx, token)
    info: dict[str, Any] = {
        "status": status,
        "durationMs": duration_ms,
        "artifactId": str(row.artifact_id) if row and row.artifact_id else None,
        "failure": row.failure if row else None,
    }
    return Minted(_view_url(ctx, "replay", tokens.mint(ctx.signing_key, token)), token.expires_at, token), info


# --- a run's recording as a resource (the current generation's recordings) ---

# How long a recording's download link works.
DOWNLOAD_SECONDS = 300


@dataclass(frozen=True)
class RecordingState:
    """Where a run's whole-run recording stands. `stage`: `queued` (capture or export not begun),
    `capturing` (the run is active), `exporting` (the video is being made), `ready`, `failed`;
    `partial` is None until the capture has ended, and true when it failed or lost frames (a replica
    died owning the run before it stored them: the replay data's `gaps` say where)."""

    run: Run
    row: Recording | None
    artifact: Any  # the video's Artifact once ready (app.artifacts.models.Artifact)
    stage: str
    duration_ms: int | None
    partial: bool | None
    failure: dict[str, Any] | None


async def recording_state(ctx: AppContext, run: Run) -> RecordingState | None:
    """The run's recording, or None when it has none (recording off, the run ended before any capture
    began, or its video was purged). Its artifact is None until it is ready."""
    from app.artifacts.models import Artifact

    async with ctx.db.read() as s:
        run = await s.get(Run, run.id) or run
        row = await s.get(Recording, run.id)
        artifact = await s.get(Artifact, row.artifact_id) if row is not None and row.artifact_id else None
    active = run.status == RunStatus.ACTIVE
    if row is None:
        if not (active and run.recording):
            return None
        return RecordingState(run, None, None, "queued", None, None, None)
    duration = recording_duration_ms(run, row)
    if row.status == RS.PREPARING:
        stage = "capturing" if active else "queued"
        return RecordingState(run, row, None, stage, duration, None, None)
    if row.status == RS.PROCESSING:
        return RecordingState(run, row, None, "exporting", duration, None, None)
    if row.status == RS.READY and artifact is not None:
        made = (artifact.metadata_ or {}).get("durationMs")
        # Partial when frames were lost with a replica that died owning the run (a recorded gap).
        lost = any(gap["lost"] for gap in await recorded_frames.gaps(ctx, run.id))
        return RecordingState(run, row, artifact, "ready", made if isinstance(made, int) else duration, lost, None)
    if row.status == RS.READY:
        return None  # its video was purged since: no recording any more
    failure = row.failure
    if row.status == RS.NOT_AVAILABLE:
        failure = {"code": "recording.empty", "message": "No frame was captured"}
    return RecordingState(run, row, None, "failed", duration, True, failure)


def download_link(ctx: AppContext, state: RecordingState) -> tuple[str, float] | None:
    """A signed link to the recording's video that works without an API key for DOWNLOAD_SECONDS:
    (url, expiry as epoch seconds), or None while there is no video."""
    if state.artifact is None:
        return None
    token = tokens.ViewerToken(
        kind="download",
        viewer_id=state.artifact.id,
        run_id=state.run.id,
        account_id=state.run.account_id,
        control="none",
        expires_at=_expiry(DOWNLOAD_SECONDS),
    )
    raw = tokens.mint(ctx.signing_key, token)
    return f"{ctx.settings.resolved_public_url}/v1/recordings/download?token={raw}", token.expires_at


async def recording_download(ctx: AppContext, raw: str | None) -> Any:
    """The video artifact a download link names (401 `viewer.token_invalid` for a bad or expired one,
    404 `recording.not_found` when the run or its video is gone since)."""
    from app.artifacts.models import Artifact

    token = tokens.verify(ctx.signing_key, raw, "download")
    async with ctx.db.read() as s:
        artifact = await s.get(Artifact, token.viewer_id)
    if artifact is None or artifact.run_id != token.run_id or artifact.account_id != token.account_id:
        raise NotFound("The recording no longer exists", code="recording.not_found")
    return artifact


async def current_run_of(ctx: AppContext, runtime: Runtime) -> Run:
    """The browser's current run; 409 `runtime.not_active` naming its latest run when it has none."""
    async with ctx.db.read() as s:
        runtime = await s.get(Runtime, runtime.id) or runtime
        run = await s.get(Run, runtime.active_run_id) if runtime.active_run_id else None
        latest = None
        if run is None:
            latest = (
                await s.execute(select(Run.id).where(Run.runtime_id == runtime.id).order_by(Run.id.desc()).limit(1))
            ).scalar_one_or_none()
    if run is None:
        raise Conflict(
            "The browser has no current run; a finished run's recording is read through its run",
            code="runtime.not_active",
            details={"runtimeId": str(runtime.id), "status": "idle", "latestRunId": str(latest) if latest else None},
        )
    return run


async def _run_of(ctx: AppContext, token: tokens.ViewerToken) -> Run:
    """The run a checked token names, unless its link was revoked (or never recorded)."""
    async with ctx.db.read() as s:
        run = await s.get(Run, token.run_id)
        viewer = await s.get(Viewer, token.viewer_id)
    if (
        run is None
        or run.account_id != token.account_id
        or viewer is None
        or viewer.run_id != run.id
        or viewer.revoked_at is not None
    ):
        raise tokens.invalid()
    return run


# --- viewer links: recorded when minted, revocable until they expire ---


async def _record_viewer(ctx: AppContext, token: tokens.ViewerToken, take_control: Any = None) -> None:
    async with ctx.db.transaction() as s:
        s.add(
            Viewer(
                id=token.viewer_id,
                run_id=token.run_id,
                account_id=token.account_id,
                kind=token.kind,
                control=token.control,
                created_at=clock.now(),
                expires_at=datetime.fromtimestamp(token.expires_at, UTC),
                revoked_at=None,
            )
        )
        if take_control is not None:
            await s.flush()
            await controller.take(ctx, s, take_control, Holder("live_view", token.viewer_id.hex), OPEN_GRACE_MS)


def viewer_not_found(viewer_id: object) -> NotFound:
    return NotFound("Viewer link not found", code="viewer.not_found", details={"viewerId": str(viewer_id)})


async def revoke_viewers(ctx: AppContext, run: Run, viewer_id: str | None = None) -> list[Viewer]:
    """Revoke one link of the run (or all of them): pages open on it close, its URL stops working.
    Revoking a revoked link returns it unchanged."""
    wanted = ids.parse_uuid(viewer_id) if viewer_id is not None else None
    if viewer_id is not None and wanted is None:
        raise viewer_not_found(viewer_id)
    now = clock.now()
    async with ctx.db.transaction() as s:
        query = select(Viewer).where(Viewer.run_id == run.id)
        if wanted is not None:
            query = query.where(Viewer.id == wanted)
        rows = list((await s.execute(query.with_for_update())).scalars())
        if wanted is not None and not rows:
            raise viewer_not_found(viewer_id)
        revoked = [row for row in rows if row.revoked_at is None]
        for row in revoked:
            row.revoked_at = now
        # A person's hold ends with the viewer it was taken through (it is given back at once).
        runtime = await s.get(Runtime, run.runtime_id, populate_existing=True)
        if runtime is not None and runtime.controller_kind == "live_view":
            if runtime.controller_id in {row.id.hex for row in revoked}:
                await controller.release(ctx, s, runtime.id, controller.token_of(runtime), actor="script")
    for row in revoked:
        ctx.events.emit(run.id, "live.revoked", "live", {"viewerId": str(row.id), "kind": row.kind}, source="api")
        for session in list(_OPEN.get(row.id, ())):
            session.revoke()
    return rows


async def viewer_revoked(ctx: AppContext, viewer_id: Any) -> bool:
    async with ctx.db.read() as s:
        row = await s.get(Viewer, viewer_id)
    return row is None or row.revoked_at is not None


# Open viewer sessions of this process by viewer id, so a revocation closes them at once (other
# processes notice within REVOCATION_CHECK_SECONDS).
_OPEN: dict[Any, set[ViewerSession]] = {}
REVOCATION_CHECK_SECONDS = 5


async def replay_data(ctx: AppContext, raw: str | None) -> dict[str, Any]:
    """What the replay page plays: frame times, the run's activity at its times, the video if made."""
    token = tokens.verify(ctx.signing_key, raw, "replay")
    run = await _run_of(ctx, token)
    status, duration_ms, row = await recording_of(ctx, run)
    frames = await recorded_frames.entries(ctx, run.id) if status != RS.NOT_AVAILABLE else []
    gaps = await recorded_frames.gaps(ctx, run.id) if frames else []
    async with ctx.db.read() as s:
        events = list(
            (
                await s.execute(
                    select(RunEvent)
                    .where(RunEvent.run_id == run.id)
                    .order_by(RunEvent.seq)
                    .limit(runs.ACTIVITY_EVENT_CAP)
                )
            ).scalars()
        )
    start = run.started_at.timestamp()
    activity = [
        {
            "t": max(0, int((datetime.fromisoformat(item["time"]).timestamp() - start) * 1000)),
            "category": item["category"],
            "severity": item["severity"],
            "message": item["message"],
        }
        for item in activity_items.build(events)
    ]
    return {
        "runId": str(run.id),
        "runStatus": run.status,
        "status": status,
        "durationMs": duration_ms,
        "startedAt": clock.iso(run.started_at),
        "frames": frames,
        # Where the recording has a hole (a recorder taken over by another process).
        "gaps": gaps,
        "activity": activity,
        "video": {"format": row.video_format, "artifactId": str(row.artifact_id)}
        if row is not None and row.artifact_id
        else None,
    }


async def replay_frame(ctx: AppContext, raw: str | None, seq: int):
    """The frame's file (filesystem default) or bytes (read from the object store), or None."""
    token = tokens.verify(ctx.signing_key, raw, "replay")
    run = await _run_of(ctx, token)
    return await recorded_frames.read_frame(ctx, run.id, seq)


async def replay_video(ctx: AppContext, raw: str | None):
    from app.artifacts.models import Artifact

    token = tokens.verify(ctx.signing_key, raw, "replay")
    run = await _run_of(ctx, token)
    async with ctx.db.read() as s:
        row = await s.get(Recording, run.id)
        artifact = await s.get(Artifact, row.artifact_id) if row and row.artifact_id else None
    return artifact


# --- the viewer's socket ---


class InputLog:
    """A person's input through a live view, as the run's `live.input` events (their own, never the
    script's): one `click` per mouse press, one `type` per burst of typing (how many characters, never
    which), one `key` per named key or shortcut, one `scroll` per burst of wheel turns. Mouse moves
    are not recorded."""

    QUIET_SECONDS = 1.0
    MODIFIER_KEYS = frozenset({"Shift", "Control", "Alt", "Meta", "CapsLock"})

    def __init__(self, emit) -> None:
        self.emit = emit
        self.chars = 0
        self.scroll: dict[str, Any] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.chars:
            self.emit("live.input", action="type", chars=self.chars)
            self.chars = 0
        if self.scroll is not None:
            self.emit("live.input", action="scroll", **self.scroll)
            self.scroll = None

    def _later(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(self.QUIET_SECONDS, self.flush)

    def record(self, message: dict[str, Any]) -> None:
        """Note one viewer message that was sent to the browser as input."""
        kind = message.get("type")
        if kind == "mouse" and message.get("event") == "down":
            self.flush()
            self.emit(
                "live.input",
                action="click",
                x=round(message["x"], 4),
                y=round(message["y"], 4),
                button=message.get("button", "left"),
            )
        elif kind == "wheel":
            if self.chars:
                self.flush()
            if self.scroll is None:
                self.scroll = {"x": round(message["x"], 4), "y": round(message["y"], 4), "deltaY": 0}
            self.scroll["deltaY"] += message.get("deltaY", 0)
            self._later()
        elif kind == "key" and message.get("event") == "down":
            key = message["key"]
            bits = viewer_input._modifiers(message)  # the bits the browser was sent, not the raw value
            # A shortcut is Ctrl or Meta without Alt on a letter or digit. AltGr (Ctrl+Alt on Windows) and
            # Option (Alt on macOS) type characters, which may be a password's: those are counted only.
            shortcut = bool(bits & (2 | 4)) and not bits & 1 and key.isascii() and key.isalnum()
            if key in self.MODIFIER_KEYS:
                return
            if len(key) == 1 and not shortcut:
                if self.scroll is not None:
                    self.flush()
                self.chars += 1
                self._later()
                return
            self.flush()
            if shortcut:
                names = [n for bit, n in ((2, "Control"), (4, "Meta"), (8, "Shift")) if bits & bit]
                key = "+".join([*names, key])
            self.emit("live.input", action="key", key=key)
        elif kind == "text":
            self.flush()
            self.emit("live.input", action="type", chars=len(message["text"]), paste=True)


class ViewerSession:
    """One open viewer page: frames out, input in (when it controls the browser)."""

    def __init__(
        self,
        ctx: AppContext,
        ws: WebSocket,
        token: tokens.ViewerToken,
        run: Run,
        runtime: Runtime,
        watch_first: bool = False,
    ) -> None:
        self.ctx, self.ws, self.token, self.run, self.runtime = ctx, ws, token, run, runtime
        # An input link opened to watch first (`start=watch`): control is taken only when asked for.
        self.watch_first = watch_first
        self.inputs = InputLog(self._emit)
        self.holder = Holder("live_view", token.viewer_id.hex)
        self.lock_token: str | None = None
        self.frame: Frame | None = None  # newest frame not sent yet
        self.sent_frame: Frame | None = None  # what the viewer shows (input coordinates refer to it)
        self.states: list[dict[str, Any]] = []
        self.wake = asyncio.Event()
        self.cast = None
        self.revoked = asyncio.Event()

    def revoke(self) -> None:
        self.revoked.set()

    async def _watch_revocation(self) -> None:
        while not self.revoked.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.revoked.wait(), REVOCATION_CHECK_SECONDS)
            if not self.revoked.is_set() and await viewer_revoked(self.ctx, self.token.viewer_id):
                self.revoked.set()

    def _on_frame(self, frame: Frame) -> None:
        self.frame = frame
        self.wake.set()

    def _on_state(self, state: dict[str, Any]) -> None:
        self.states.append(state)
        self.wake.set()

    def _emit(self, type: str, **data: Any) -> None:
        self.ctx.events.emit(self.run.id, type, "live", {"viewerId": str(self.token.viewer_id), **data}, source="api")

    async def run_session(self) -> None:
        subscriber = Subscriber(self._on_frame, self._on_state)
        self.cast = await self.ctx.screencasts.subscribe(self.run.id, self.runtime.driver_state["wsUrl"], subscriber)
        tasks: list[asyncio.Task] = []
        _OPEN.setdefault(self.token.viewer_id, set()).add(self)
        try:
            self._emit("live.opened", control=self.token.control)
            if self.token.control == "input" and not self.watch_first:
                await self._take_control()  # before reading input, so the first click is not dropped
            tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._receive_loop())]
            if self.token.control == "input":
                tasks.append(asyncio.create_task(self._renew_loop()))
            revocation = asyncio.create_task(self._watch_revocation())
            tasks.append(revocation)
            tasks.append(asyncio.create_task(asyncio.sleep(max(0.0, self.token.expires_at - time.time()))))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[-1] in done:
                await self._send(
                    {"type": "state", "state": "expired", "message": "This viewer link has expired; ask for a new one"}
                )
            elif revocation in done:
                await self._send({"type": "state", "state": "revoked", "message": "This viewer link was revoked"})
        finally:
            _OPEN.get(self.token.viewer_id, set()).discard(self)
            if not _OPEN.get(self.token.viewer_id):
                _OPEN.pop(self.token.viewer_id, None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.ctx.screencasts.unsubscribe(self.cast, subscriber)
            self.inputs.flush()
            await self._hand_back(reason="revoked" if self.revoked.is_set() else "closed")
            self._emit("live.closed")
            if self.ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.ws.close(1000)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(orjson.dumps(message).decode())

    async def _send_loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            states, self.states = self.states, []
            for state in states:
                await self._send({**state, "control": self._control_state()})
                if state.get("state") == "ended":
                    return
            frame, self.frame = self.frame, None
            if frame is not None:
                await self._send(
                    {
                        "type": "frame",
                        "data": frame.data,
                        "width": frame.width,
                        "height": frame.height,
                        "timestamp": frame.timestamp,
                    }
                )
                self.sent_frame = frame

    def _control_state(self) -> str:
        if self.token.control != "input":
            return "view"
        return "controlling" if self.lock_token else "available"

    async def _receive_loop(self) -> None:
        while True:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            if self.token.control != "input":
                continue  # watch-only: whatever the page sends
            if kind == "takeover":
                await self._take_control()
            elif kind == "handback":
                await self._hand_back()
            elif self.lock_token and self.cast is not None:
                commands = viewer_input.translate(message, self.sent_frame or self.cast.last_frame)
                for method, params in commands:
                    await self.cast.send_input(method, params)
                if commands:
                    self.inputs.record(message)

    async def _take_control(self) -> None:
        if self.lock_token is not None:
            self._on_state({**self.cast.state})
            return
        try:
            # Taken anew (or kept, when the link's own hold from minting is still there), with a new epoch.
            async with self.ctx.db.transaction() as s:
                before = await s.get(Runtime, self.runtime.id, populate_existing=True)
                previous = None
                if before is not None and controller.holder_of(before) not in (None, self.holder):
                    expires = before.controller_expires_at
                    previous = before.controller_kind if expires is None or expires > clock.now() else None
                self.lock_token = await controller.take(self.ctx, s, self.runtime.id, self.holder, CONTROL_TTL_MS)
        except DomainError as busy:
            holder = (busy.details or {}).get("holder") or {}
            refused = {
                "code": busy.code,
                "message": busy.message,
                "holder": holder.get("holder"),
                "holderKind": holder.get("kind"),
                "holderId": holder.get("id"),
                "until": holder.get("until"),
            }
            self._emit("live.takeover_refused", **refused)
            self._on_state({**self.cast.state, "message": busy.message, "refused": refused})
            return
        previous_word = controller.HOLDER_WORDS.get(previous, "none") if previous else "none"
        self._emit("live.takeover", epoch=lock_epoch(self.lock_token), previous=previous_word)
        self._on_state({**self.cast.state})

    async def _hand_back(self, reason: str = "handback") -> None:
        """Give control back (`reason`: `handback`, `closed` or `revoked`); recorded as the person's."""
        if self.lock_token is None:
            return
        self.inputs.flush()
        token, self.lock_token = self.lock_token, None
        released = False
        with contextlib.suppress(Exception):
            async with self.ctx.db.transaction() as s:
                # A run connection this viewer took the runtime from gets it back here.
                released = await controller.release(self.ctx, s, self.runtime.id, token)
        if released or reason == "revoked":
            self._emit("live.handback", reason=reason, epoch=lock_epoch(token) + 1)
        else:
            self._emit("live.control_lost", reason="taken_over")
        if reason == "handback":
            self._on_state({**self.cast.state})

    async def _renew(self) -> bool:
        async with self.ctx.db.transaction() as s:
            return await controller.renew(self.ctx, s, self.runtime.id, self.lock_token, CONTROL_TTL_MS)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(CONTROL_RENEW_SECONDS)
            if self.lock_token and not await self._renew():
                self.lock_token = None
                self.inputs.flush()
                async with self.ctx.db.read() as s:
                    row = await s.get(Runtime, self.runtime.id, populate_existing=True)
                holder = controller.holder_of(row) if row is not None else None
                reason = "taken_over" if holder is not None and holder != self.holder else "expired"
                self._emit("live.control_lost", reason=reason)
                message = "Control was lost: it expired"
                if reason == "taken_over":
                    who = controller.WHO.get(holder.kind, holder.kind).format(id=holder.id)
                    message = f"Control was lost: {who} took it"
                self._on_state({**self.cast.state, "message": message})


def lock_epoch(token: str | None) -> int:
    try:
        return int((token or "").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


async def open_viewer(ctx: AppContext, ws: WebSocket, raw: str | None, start: str | None = None) -> None:
    try:
        token = tokens.verify(ctx.signing_key, raw, "live")
        run = await _run_of(ctx, token)
    except DomainError:
        # Accepted first: a close code reaches the page (a refused upgrade is an anonymous 403).
        await ws.accept()
        await ws.close(code=4401, reason="invalid or expired viewer link")
        return
    await ws.accept()
    try:
        runtime = await _active_runtime(ctx, run)
    except Conflict:
        await ws.send_text(orjson.dumps({"type": "state", "state": "ended", "message": "The run has ended"}).decode())
        await ws.close(1000)
        return
    session = ViewerSession(ctx, ws, token, run, runtime, watch_first=start == "watch")
    try:
        await session.run_session()
    except OSError:
        await ws.send_text(
            orjson.dumps({"type": "state", "state": "ended", "message": "The browser cannot be reached"}).decode()
        )
        await ws.close(1011)

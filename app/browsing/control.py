"""Who controls a running browser, read and changed on an API caller's request: a person takes control
through an input viewer of the browser's current run (a live-view link, minted by a view or the run's
standing link) and gives it back. The rules of the lock itself are app/runtimes/controller.py's.

`expected_epoch`, when given, must be the controller's epoch now: a caller acting on what it saw
before someone else changed control is refused before anything changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, NotFound
from app.live.models import Viewer
from app.locks import Holder
from app.runs.models import RunEvent
from app.runtimes import controller
from app.runtimes.lifecycle import runtime_not_active
from app.runtimes.models import Runtime, RuntimeStatus
from app.views.models import View, ViewViewer

# A person's hold lasts as long as their viewer link, and at most this long without being taken again.
MAX_HUMAN_HOLD = timedelta(hours=24)


class ViewerForbidden(DomainError):
    status = 403
    code = "viewer.control_forbidden"


@dataclass(frozen=True)
class ControlState:
    runtime_id: uuid.UUID
    run_id: uuid.UUID
    kind: str | None  # our holder kind (connection, invocation, live_view, api) or None
    holder_id: str | None
    epoch: int
    expires_at: datetime | None
    since: datetime | None


def _state(runtime: Runtime) -> ControlState:
    live = runtime.controller_kind is not None and (
        runtime.controller_expires_at is None or runtime.controller_expires_at > clock.now()
    )
    return ControlState(
        runtime_id=runtime.id,
        run_id=runtime.active_run_id,
        kind=runtime.controller_kind if live else None,
        holder_id=runtime.controller_id if live else None,
        epoch=runtime.controller_epoch,
        expires_at=runtime.controller_expires_at if live else None,
        since=runtime.controller_since,
    )


def _running(runtime: Runtime | None, runtime_id: uuid.UUID) -> Runtime:
    if runtime is None or runtime.status != RuntimeStatus.ACTIVE or runtime.active_run_id is None:
        raise runtime_not_active(runtime_id, runtime.status if runtime else None, "The browser is not running")
    return runtime


async def state(ctx: AppContext, runtime: Runtime) -> ControlState:
    async with ctx.db.read() as s:
        return _state(_running(await s.get(Runtime, runtime.id, populate_existing=True), runtime.id))


def _stale(expected: int | None, runtime: Runtime) -> None:
    if expected is not None and expected != runtime.controller_epoch:
        raise Conflict(
            f"Control changed since epoch {expected}: it is at epoch {runtime.controller_epoch} now; read it again",
            code="runtime.stale_generation",
            details={"expectedEpoch": expected, "epoch": runtime.controller_epoch},
        )


async def _viewer(s: AsyncSession, runtime: Runtime, viewer_id: str) -> Viewer:
    """The input viewer of the browser's current run that `viewer_id` names, still allowed to control."""
    parsed = ids.parse_uuid(viewer_id)
    viewer = await s.get(Viewer, parsed) if parsed else None
    if viewer is None or viewer.account_id != runtime.account_id:
        raise NotFound(f"No viewer {viewer_id[:64]!r}", code="viewer.not_found", details={"viewerId": viewer_id[:64]})
    details = {"viewerId": str(viewer.id)}
    if viewer.kind != "live" or viewer.run_id != runtime.active_run_id:
        raise ViewerForbidden("This viewer belongs to another browser or run", details=details)
    if viewer.control != "input":
        raise ViewerForbidden("This viewer watches only; it cannot take control", details=details)
    if viewer.revoked_at is not None or viewer.expires_at <= clock.now():
        raise ViewerForbidden("This viewer has expired or was revoked", details=details)
    view = (
        await s.execute(
            select(View).join(ViewViewer, ViewViewer.view_id == View.id).where(ViewViewer.viewer_id == viewer.id)
        )
    ).scalar_one_or_none()
    if view is not None and (not view.control or view.revoked_at is not None or view.expires_at <= clock.now()):
        raise ViewerForbidden("The view this viewer came from no longer permits control", details=details)
    return viewer


async def _last_change(s: AsyncSession, run_id: uuid.UUID) -> str | None:
    """The id of the run's latest `control.changed` event (the result's canonical event)."""
    await s.flush()
    found = (
        await s.execute(
            select(RunEvent.id)
            .where(RunEvent.run_id == run_id, RunEvent.type == "control.changed")
            .order_by(RunEvent.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return str(found) if found else None


async def take_for_viewer(
    ctx: AppContext, runtime: Runtime, viewer_id: str, expected_epoch: int | None
) -> tuple[ControlState, str | None]:
    """A person takes control through `viewer_id`; 409 `browser.control_held` while a CDP client is
    attached, a task works or another person holds it. Taking what the viewer already holds changes
    nothing."""
    async with ctx.db.transaction() as s:
        row = _running(
            (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one_or_none(),
            runtime.id,
        )
        viewer = await _viewer(s, row, viewer_id)
        _stale(expected_epoch, row)
        holder = Holder("live_view", viewer.id.hex)
        if _state(row).kind != holder.kind or row.controller_id != holder.id:
            hold = min(viewer.expires_at - clock.now(), MAX_HUMAN_HOLD)
            await controller.take(ctx, s, row.id, holder, max(1000, int(hold.total_seconds() * 1000)))
        event_id = await _last_change(s, row.active_run_id)
        await s.refresh(row)
        return _state(row), event_id


async def release_for_viewer(
    ctx: AppContext, runtime: Runtime, viewer_id: str, expected_epoch: int | None
) -> tuple[ControlState, str | None]:
    """The person holding control through `viewer_id` gives it back (to the run's CDP connection, if
    any); 409 `viewer.control_not_held` when that viewer does not hold it."""
    async with ctx.db.transaction() as s:
        row = _running(
            (await s.execute(select(Runtime).where(Runtime.id == runtime.id).with_for_update())).scalar_one_or_none(),
            runtime.id,
        )
        viewer = await _viewer(s, row, viewer_id)
        _stale(expected_epoch, row)
        current = _state(row)
        if current.kind != "live_view" or current.holder_id != viewer.id.hex:
            raise Conflict(
                "This viewer does not hold control of the browser",
                code="viewer.control_not_held",
                details={"viewerId": str(viewer.id), "epoch": row.controller_epoch},
            )
        await controller.release(ctx, s, row.id, controller.token_of(row))
        event_id = await _last_change(s, row.active_run_id)
        await s.refresh(row)
        return _state(row), event_id

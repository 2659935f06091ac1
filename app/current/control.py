"""Who controls a browser, in the current generation's words: `GET .../control`, a person's take and
release through a viewer of the current run (`.../control/take`, `.../control/release`), and
`.../connections/revoke`, which ends every connection of the current run and issues new ones."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from app.accounts.auth import CtxDep, IdempotencyDep
from app.browsing import control
from app.browsing.control import ControlState
from app.connections import service as connections
from app.core.schemas import RequestModel, Timestamp, WireModel, errors
from app.current import shapes
from app.current.paths import PathBrowser
from app.current.schemas import BrowserOut, Holder

router = APIRouter(prefix="/v1/browsers", tags=["browsers (current)"])


class ControlOut(WireModel):
    object: Literal["control"] = "control"
    browser_id: str
    run_id: str
    holder: Holder
    epoch: int
    status: Literal["succeeded"] = "succeeded"
    expires_at: Timestamp | None = None


class ControlResultOut(WireModel):
    object: Literal["control.result"] = "control.result"
    status: Literal["succeeded"] = "succeeded"
    event_id: str = Field(description="The run's control.changed event of this transition")
    data: ControlOut


class ControlChange(RequestModel):
    viewer_id: str = Field(min_length=1, max_length=64, description="An input viewer of the browser's current run")
    expected_epoch: int | None = Field(default=None, ge=0, description="Refused when control changed since")


def _out(state: ControlState) -> ControlOut:
    return ControlOut(
        browser_id=str(state.runtime_id),
        run_id=str(state.run_id),
        holder=shapes.holder_word(state.kind),
        epoch=state.epoch,
        expires_at=state.expires_at,
    )


def _result(state: ControlState, event_id: str | None) -> ControlResultOut:
    return ControlResultOut(event_id=event_id or "", data=_out(state))


@router.get("/{browser_id}/control", response_model=ControlOut, responses=errors(404, 409))
async def get_control(ctx: CtxDep, runtime: PathBrowser) -> ControlOut:
    """Who controls the browser's current run now (`agent`, `human` or `none`) and the epoch."""
    return _out(await control.state(ctx, runtime))


@router.post("/{browser_id}/control/take", response_model=ControlResultOut, responses=errors(400, 403, 404, 409))
async def take_control(
    ctx: CtxDep, runtime: PathBrowser, body: ControlChange, idem: IdempotencyDep
) -> ControlResultOut:
    """A person takes control through an input viewer of the current run; it holds until that viewer
    releases it or its link ends."""

    async def make() -> ControlResultOut:
        return _result(*await control.take_for_viewer(ctx, runtime, body.viewer_id, body.expected_epoch))

    return await idem.once(make, body.model_dump(mode="json"))


@router.post("/{browser_id}/control/release", response_model=ControlResultOut, responses=errors(400, 403, 404, 409))
async def release_control(
    ctx: CtxDep, runtime: PathBrowser, body: ControlChange, idem: IdempotencyDep
) -> ControlResultOut:
    """The viewer holding control gives it back (to the run's CDP connection, if it has one)."""

    async def make() -> ControlResultOut:
        return _result(*await control.release_for_viewer(ctx, runtime, body.viewer_id, body.expected_epoch))

    return await idem.once(make, body.model_dump(mode="json"))


@router.post("/{browser_id}/connections/revoke", response_model=BrowserOut, responses=errors(404, 409))
async def revoke_connections(ctx: CtxDep, runtime: PathBrowser, idem: IdempotencyDep) -> BrowserOut:
    """End every connection of the current run (its CDP URL and every lease; open sockets close); the
    browser returned carries a new CDP URL."""

    async def make() -> BrowserOut:
        await connections.revoke_run(ctx, runtime)
        return await shapes.browser(ctx, runtime)

    return await idem.once(make, {})


routers = (router,)

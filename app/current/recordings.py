"""Recordings in the current generation: `/v1/runs/{id}/recordings[/{id}]`, `/v1/browsers/{id}/recording`,
and the signed download link a ready recording carries (`/v1/recordings/download?token=`).

A run has at most one recording (`kind` `whole_run`), made by `app/live/recorder.py`; its id is the
run's id. Its video is the run's recording artifact (WebM, or a ZIP of the frames where the server has
no ffmpeg), served as stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from app.accounts.auth import CtxDep
from app.core import openapi
from app.core.errors import NotFound
from app.core.paging import PageParams, page_params
from app.core.schemas import Timestamp, WireModel, errors
from app.current.paths import PathBrowser
from app.current.schemas import Order, page_model
from app.live import service as live
from app.runs.paths import PathRun
from app.storage import make_store
from app.storage.http import Download, serve

# Plain routers: no earlier generation serves these paths, so they answer whatever the header.
router = APIRouter(tags=["recordings (current)"])
routers: tuple[APIRouter, ...] = (router,)

RecordingStatus = Literal["queued", "running", "awaiting_input", "succeeded", "failed", "canceled", "unknown"]
_STATUS = {"queued": "queued", "capturing": "running", "exporting": "running", "ready": "succeeded", "failed": "failed"}


class RecordingOut(WireModel):
    id: str
    object: Literal["recording"] = "recording"
    kind: Literal["whole_run"] = "whole_run"
    run_id: str
    status: RecordingStatus
    partial: bool | None = None
    created_at: Timestamp
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    duration_ms: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    download_url: str | None = None
    download_expires_at: Timestamp | None = None
    error: dict | None = None


RecordingPage = page_model(RecordingOut)


def recording_out(ctx, state: live.RecordingState) -> RecordingOut:
    run, row, artifact = state.run, state.row, state.artifact
    link = live.download_link(ctx, state)
    return RecordingOut(
        id=str(run.id),
        run_id=str(run.id),
        status=_STATUS[state.stage],
        partial=state.partial,
        created_at=row.created_at if row is not None else run.started_at,
        started_at=run.started_at,
        ended_at=run.finished_at,
        duration_ms=state.duration_ms,
        size_bytes=artifact.size_bytes if artifact is not None else None,
        sha256=artifact.sha256 if artifact is not None else None,
        content_type=artifact.content_type if artifact is not None else None,
        download_url=link[0] if link else None,
        download_expires_at=datetime.fromtimestamp(link[1], UTC) if link else None,
        error=state.failure,
    )


def recording_not_found(recording_id: str) -> NotFound:
    return NotFound("Recording not found", code="recording.not_found", details={"recordingId": recording_id[:64]})


@router.get("/v1/runs/{run_id}/recordings", response_model=RecordingPage, responses=errors(400, 404))
async def list_recordings(
    ctx: CtxDep,
    run: PathRun,
    page: Annotated[PageParams, Depends(page_params)],
    order: Annotated[Order, Query()] = "desc",
) -> RecordingPage:
    """The run's recordings: its whole-run recording, if it has one (still readable after its browser
    was deleted)."""
    state = await live.recording_state(ctx, run)
    # One recording at most: any cursor is past it.
    items = [recording_out(ctx, state)] if state is not None and page.after is None else []
    return RecordingPage(data=items, has_more=False)


@router.get("/v1/runs/{run_id}/recordings/{recording_id}", response_model=RecordingOut, responses=errors(404))
async def get_recording(ctx: CtxDep, run: PathRun, recording_id: str) -> RecordingOut:
    """One recording of the run (its id is the run's)."""
    state = await live.recording_state(ctx, run) if recording_id == str(run.id) else None
    if state is None:
        raise recording_not_found(recording_id)
    return recording_out(ctx, state)


@router.get("/v1/browsers/{browser_id}/recording", response_model=RecordingOut, responses=errors(404, 409))
async def browser_recording(ctx: CtxDep, runtime: PathBrowser) -> RecordingOut:
    """The recording of the browser's current run: 409 `browser.not_running` (naming its latest run)
    when it has none, 404 `recording.not_found` when that run is not recorded."""
    run = await live.current_run_of(ctx, runtime)
    state = await live.recording_state(ctx, run)
    if state is None:
        raise NotFound(
            "The browser's current run is not recorded", code="recording.not_found", details={"runId": str(run.id)}
        )
    return recording_out(ctx, state)


@router.get(
    "/v1/recordings/download",
    response_class=StreamingResponse,
    responses={**openapi.download("The recording's video"), **errors(401, 404)},
)
async def download_recording(
    ctx: CtxDep,
    token: Annotated[str | None, Query(max_length=2048)] = None,
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> StreamingResponse:
    """A recording's video through the signed link in its `downloadUrl` (no API key; expires in 5 minutes)."""
    artifact = await live.recording_download(ctx, token)
    download = Download(
        key=artifact.object_key, filename=artifact.name, content_type=artifact.content_type, sha256=artifact.sha256
    )
    return await serve(make_store(ctx.settings), download, range_, if_range)

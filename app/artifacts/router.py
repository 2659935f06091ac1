"""Artifact routes: a run's artifacts (newest first), their bytes, and artifacts across a space."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from starlette.responses import StreamingResponse

from app.accounts.auth import CtxDep
from app.artifacts import service
from app.artifacts.schemas import ArtifactKindLiteral, ArtifactList, ArtifactOut
from app.core import openapi
from app.core.paging import PageParams, page_params
from app.core.query import multi
from app.core.schemas import errors
from app.runs.paths import PathRun
from app.spaces.paths import PathSpace
from app.storage import http as content
from app.storage import make_store

Page = Annotated[PageParams, Depends(page_params)]
KindFilter = Annotated[list[str] | None, Depends(multi("kind", ArtifactKindLiteral, "Artifact kinds, e.g. download"))]
RangeHeader = Annotated[str | None, Header(alias="Range")]
IfRangeHeader = Annotated[str | None, Header(alias="If-Range")]

router = APIRouter(tags=["artifacts"])


@router.get("/v1/runs/{run_id}/artifacts", response_model=ArtifactList, responses=errors(400, 404))
async def list_run_artifacts(ctx: CtxDep, run: PathRun, page: Page, kind: KindFilter) -> ArtifactList:
    """Artifacts of a run, newest first."""
    artifacts, cursor = await service.list_for_run(ctx, run, page, kinds=kind)
    return ArtifactList.of(artifacts, cursor)


@router.get("/v1/runs/{run_id}/artifacts/{artifact_id}", response_model=ArtifactOut, responses=errors(404))
async def get_artifact(ctx: CtxDep, run: PathRun, artifact_id: str) -> ArtifactOut:
    return ArtifactOut.of(await service.get(ctx, run, artifact_id))


@router.get(
    "/v1/runs/{run_id}/artifacts/{artifact_id}/content",
    response_class=StreamingResponse,
    responses={**errors(404, 503), **openapi.download()},
)
async def artifact_content(
    ctx: CtxDep, run: PathRun, artifact_id: str, range_: RangeHeader = None, if_range: IfRangeHeader = None
) -> StreamingResponse:
    """The artifact's bytes as an attachment; a single `Range: bytes=...` gets 206."""
    download = await service.content(ctx, run, artifact_id)
    return await content.serve(make_store(ctx.settings), download, range_, if_range)


@router.get("/v1/spaces/{space_id}/artifacts", response_model=ArtifactList, responses=errors(400, 404))
async def list_space_artifacts(
    ctx: CtxDep,
    space: PathSpace,
    page: Page,
    kind: KindFilter,
    runtime_id: Annotated[str | None, Query(alias="runtimeId")] = None,
) -> ArtifactList:
    """Artifacts of every run in a space, newest first; `runtimeId` narrows to one runtime."""
    artifacts, cursor = await service.list_for_space(ctx, space, page, runtime_id=runtime_id, kinds=kind)
    return ArtifactList.of(artifacts, cursor)

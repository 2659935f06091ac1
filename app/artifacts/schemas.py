from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.artifacts.models import Artifact, ArtifactKind
from app.core.schemas import JsonObject, Timestamp, WireModel, list_model

# The kinds an artifact can have, as a type (checked when recorded); one list, ArtifactKind.ALL.
ArtifactKindLiteral = Literal[ArtifactKind.ALL]


class ArtifactOut(WireModel):
    id: str
    run_id: str
    runtime_id: str
    runtime_kind: Literal["browser"] = "browser"
    kind: str
    name: str
    file_id: str | None
    path: str | None
    content_type: str
    size_bytes: int
    created_at: Timestamp
    download_url: str = Field(description="Bearer-authenticated, like every route")
    metadata: JsonObject | None

    @classmethod
    def of(cls, a: Artifact) -> ArtifactOut:
        return cls(
            id=str(a.id),
            run_id=str(a.run_id),
            runtime_id=str(a.runtime_id),
            kind=a.kind,
            name=a.name,
            file_id=str(a.file_id) if a.file_id else None,
            path=a.path,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            created_at=a.created_at,
            download_url=f"/v1/runs/{a.run_id}/artifacts/{a.id}/content",
            metadata=a.metadata_,
        )


ArtifactList = list_model(ArtifactOut, "artifacts")

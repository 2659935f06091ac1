from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, StringConstraints, model_validator

from app.artifacts.schemas import ArtifactKindLiteral, ArtifactOut
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel, list_model
from app.files.models import StorageFile
from app.files.paths import NAME_PATTERN, PATH_PATTERN

# The patterns describe what check_name()/check_relative() enforce (with the route's own error code).
FileName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
RawPath = Annotated[str, StringConstraints(max_length=4096), Field(json_schema_extra={"pattern": PATH_PATTERN})]


class FileOut(WireModel):
    """A space storage file (REFERENCE 3.8, with the flat `File` fields)."""

    id: str
    space_id: str
    name: str
    path: str
    content_type: str
    size_bytes: int
    status: Literal["ready"] = "ready"
    source: Literal["upload", "runtime", "export"]
    run_id: str | None
    runtime_id: str | None
    metadata: JsonObject | None
    download_url: str
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None

    @classmethod
    def of(cls, f: StorageFile) -> FileOut:
        return cls(
            id=str(f.id),
            space_id=str(f.space_id),
            name=f.name,
            path=f.path,
            content_type=f.content_type,
            size_bytes=f.size_bytes,
            source=f.source,
            run_id=str(f.run_id) if f.run_id else None,
            runtime_id=str(f.runtime_id) if f.runtime_id else None,
            metadata=f.metadata_,
            download_url=f"/v1/files/{f.id}/content",
            created_at=f.created_at,
            updated_at=f.updated_at,
            expires_at=f.expires_at,
        )


FileList = list_model(FileOut, "files")


class FileUpdate(RequestModel):
    name: FileName | None = None
    metadata: JsonObject | None = None


# --- runtime files ------------------------------------------------------------------------------


class StageRequest(RequestModel):
    file_id: str = Field(max_length=64)
    name: FileName | None = None
    runtime_path: RawPath | None = Field(
        default=None, description="Where in the runtime's file area; defaults to `name`, then the file's name"
    )


class StagedFile(WireModel):
    id: str
    file_id: str
    runtime_id: str
    name: str
    path: str = Field(description="Absolute path as the browser sees it (e.g. for DOM.setFileInputFiles)")
    runtime_path: str = Field(description="Path relative to the runtime's file area")
    size_bytes: int
    expires_at: Timestamp | None


class CollectArtifact(RequestModel):
    kind: ArtifactKindLiteral = "collected"
    name: FileName | None = None


class CollectRequest(RequestModel):
    runtime_path: RawPath = Field(
        validation_alias=AliasChoices("runtimePath", "runtime_path", "path"),
        description="Runtime file to collect (`path` is accepted too)",
    )
    storage_path: RawPath | None = Field(
        default=None,
        validation_alias=AliasChoices("storagePath", "storage_path", "destinationPath", "destination_path"),
        description="Path in space storage (`destinationPath` is accepted too); defaults to the runtime path",
    )
    name: FileName | None = None
    metadata: JsonObject | None = None
    artifact: CollectArtifact | None = Field(default=None, description="Also record it as a run artifact")

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data):
        if isinstance(data, dict):
            for group in (
                ("runtimePath", "runtime_path", "path"),
                ("storagePath", "storage_path", "destinationPath", "destination_path"),
            ):
                given = [k for k in group if data.get(k) is not None]
                if len(given) > 1:
                    raise ValueError(f"give only one of {' and '.join(given)}")
        return data


class CollectOut(FileOut):
    artifact: ArtifactOut | None = None


class RuntimeFileOut(WireModel):
    name: str
    path: str
    size_bytes: int
    modified_at: Timestamp


RuntimeFileList = list_model(RuntimeFileOut, "files")


class UploadOut(WireModel):
    file: FileOut
    staged: StagedFile


# --- run files ----------------------------------------------------------------------------------


class ExportRequest(RequestModel):
    name: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=5, max_length=255, pattern=r"(?i)^[^/\\\x00-\x1f\x7f]+\.zip$"
            ),
        ]
        | None
    ) = None
    kind: list[ArtifactKindLiteral] | None = Field(
        default=None,
        validation_alias=AliasChoices("kind", "kind[]", "type", "type[]"),
        description="Artifact kinds to include (`type` is accepted too); exports are left out unless asked for",
    )

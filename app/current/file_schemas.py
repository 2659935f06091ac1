"""Wire models of files in the current generation (the 0.3 wheel's `File`, `FileListResponse`,
`FileDeleteResponse`, `RunFile`, `RunFilesListResponse`), and how our rows become them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel
from app.current.schemas import page_model
from app.files import catalog, run_files
from app.files.schemas import FileName, RawPath


class FileOut(WireModel):
    id: str
    object: Literal["file"] = "file"
    filename: str
    path: str
    content_type: str
    size_bytes: int
    source: Literal["upload", "runtime"]
    type: str | None = Field(default=None, description="What the run produced it as (download, recording, ...)")
    space_id: str
    run_id: str | None
    runtime_id: str | None
    metadata: JsonObject | None
    download_url: str
    can_delete: bool
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None


class FileFolderOut(WireModel):
    path: str
    segment: str
    file_count: int
    total_bytes: int
    last_created_at: Timestamp | None


class FilePage(page_model(FileOut)):
    folders: list[FileFolderOut] | None = None


class FileDeletedOut(WireModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FilePatch(RequestModel):
    filename: FileName | None = None
    metadata: JsonObject | None = None


class RunFileFailureOut(WireModel):
    code: str
    detail: str | None = None
    retryable: bool


class RunFileBindingOut(WireModel):
    state: Literal["pending", "ready", "failed", "removing"]
    failure: RunFileFailureOut | None = None
    updated_at: Timestamp


class RunFileOut(WireModel):
    object: Literal["run.file"] = "run.file"
    file_id: str
    filename: str
    role: Literal["input", "output"]
    size: int
    space_path: str
    runtime_path: str | None = Field(default=None, description="Where the run's browser reads an input")
    source_path: str | None = Field(default=None, description="Not recorded here: always null")
    binding: RunFileBindingOut | None = Field(default=None, description="An input's copy; null once removed")
    created_at: Timestamp
    updated_at: Timestamp


RunFilePage = page_model(RunFileOut)


class RunFileAdd(RequestModel):
    file_id: str = Field(max_length=64)


class RunFileCollect(RequestModel):
    runtime_path: str = Field(
        min_length=1,
        max_length=4096,
        description="A path in the browser's file area, relative, or absolute inside it (an input's runtimePath)",
    )
    filename: FileName | None = None
    path: RawPath | None = Field(default=None, description="Space path; defaults to the runtime path")


def file_out(entry: catalog.Entry) -> FileOut:
    row = entry.row
    return FileOut(
        id=str(entry.id),
        filename=entry.name,
        path=entry.path,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        source="runtime" if entry.produced else "upload",
        type=entry.kind,
        space_id=str(row.space_id),
        run_id=str(row.run_id) if row.run_id else None,
        runtime_id=str(row.runtime_id) if row.runtime_id else None,
        metadata=entry.metadata,
        download_url=f"/v1/files/{entry.id}/content",
        can_delete=entry.deletable,
        created_at=row.created_at,
        updated_at=entry.updated_at,
        expires_at=entry.expires_at,
    )


def folder_out(folder: catalog.Folder) -> FileFolderOut:
    return FileFolderOut(
        path=folder.path,
        segment=folder.segment,
        file_count=folder.file_count,
        total_bytes=folder.total_bytes,
        last_created_at=folder.last_created_at,
    )


def run_file_out(item: run_files.RunFile) -> RunFileOut:
    entry, binding = item.entry, item.binding
    bound = None
    if binding is not None:
        failure = (
            RunFileFailureOut(code=binding.failure_code, detail=binding.failure_detail, retryable=True)
            if binding.failure_code
            else None
        )
        bound = RunFileBindingOut(state=binding.state, failure=failure, updated_at=binding.updated_at)
    return RunFileOut(
        file_id=str(entry.id),
        filename=entry.name,
        role=item.role,
        size=entry.row.size_bytes,
        space_path=entry.path,
        runtime_path=item.runtime_path,
        binding=bound,
        created_at=binding.created_at if binding is not None else entry.row.created_at,
        updated_at=binding.updated_at if binding is not None else entry.updated_at,
    )

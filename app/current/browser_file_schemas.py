"""Wire models of a running browser's files (the 0.3 wheel's `BrowserFileListResult`,
`BrowserFileUploadResult`, `BrowserFileMoveResult`, `BrowserFileDeleteResult`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.browsing.files import Done, Entry, Listing
from app.core.schemas import RequestModel, Timestamp, WireModel

Status = Literal["succeeded", "unknown"]
EVENT_ID = "The run event that records this operation"


class BrowserFileEntryOut(WireModel):
    object: Literal["filesystem.entry"] = "filesystem.entry"
    name: str
    path: str = Field(description="Absolute in the browser's file area, e.g. /downloads/report.pdf")
    kind: Literal["file", "directory", "symlink", "other"]
    size_bytes: int | None = None
    modified_at: Timestamp | None = None
    run_id: str


class BrowserFileListDataOut(WireModel):
    data: list[BrowserFileEntryOut]
    has_more: bool
    next_cursor: str | None = None


class BrowserFileListOut(WireModel):
    object: Literal["files.result"] = "files.result"
    status: Status = "succeeded"
    event_id: str = Field(description=EVENT_ID)
    data: BrowserFileListDataOut


class BrowserFileUploadDataOut(WireModel):
    object: Literal["filesystem.upload"] = "filesystem.upload"
    path: str
    size_bytes: int
    sha256: str
    run_id: str
    browser_path: str | None = Field(
        default=None, description="Where the browser itself sees the file, e.g. for DOM.setFileInputFiles"
    )


class BrowserFileUploadOut(WireModel):
    object: Literal["files.result"] = "files.result"
    status: Status = "succeeded"
    event_id: str = Field(description=EVENT_ID)
    data: BrowserFileUploadDataOut


class BrowserFileMoveIn(RequestModel):
    source_path: str = Field(min_length=1, max_length=4200)
    destination_path: str = Field(min_length=1, max_length=4200)
    overwrite: bool | None = None


class BrowserFileMoveDataOut(WireModel):
    object: Literal["filesystem.move"] = "filesystem.move"
    source_path: str
    destination_path: str
    moved: bool = True
    run_id: str


class BrowserFileMoveOut(WireModel):
    object: Literal["files.result"] = "files.result"
    status: Status = "succeeded"
    event_id: str = Field(description=EVENT_ID)
    data: BrowserFileMoveDataOut


class BrowserFileDeleteDataOut(WireModel):
    object: Literal["filesystem.delete"] = "filesystem.delete"
    path: str
    deleted: bool = True
    run_id: str


class BrowserFileDeleteOut(WireModel):
    object: Literal["files.result"] = "files.result"
    status: Status = "succeeded"
    event_id: str = Field(description=EVENT_ID)
    data: BrowserFileDeleteDataOut


def _entry(e: Entry, run_id: str) -> BrowserFileEntryOut:
    return BrowserFileEntryOut(
        name=e.name, path=e.path, kind=e.kind, size_bytes=e.size_bytes, modified_at=e.modified_at, run_id=run_id
    )


def list_out(listing: Listing) -> BrowserFileListOut:
    run_id = str(listing.run_id)
    return BrowserFileListOut(
        event_id=listing.event_id,
        data=BrowserFileListDataOut(
            data=[_entry(e, run_id) for e in listing.entries],
            has_more=listing.has_more,
            next_cursor=listing.next_cursor,
        ),
    )


def upload_out(done: Done) -> BrowserFileUploadOut:
    return BrowserFileUploadOut(
        event_id=done.event_id,
        data=BrowserFileUploadDataOut(
            path=done.path,
            size_bytes=done.size_bytes or 0,
            sha256=done.sha256 or "",
            run_id=str(done.run_id),
            browser_path=done.browser_path,
        ),
    )


def move_out(done: Done) -> BrowserFileMoveOut:
    return BrowserFileMoveOut(
        event_id=done.event_id,
        data=BrowserFileMoveDataOut(
            source_path=done.path, destination_path=done.destination or "", run_id=str(done.run_id)
        ),
    )


def delete_out(done: Done) -> BrowserFileDeleteOut:
    return BrowserFileDeleteOut(
        event_id=done.event_id, data=BrowserFileDeleteDataOut(path=done.path, run_id=str(done.run_id))
    )

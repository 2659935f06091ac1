"""Serving stored bytes over HTTP: attachment headers (RFC 6266) and single byte ranges (RFC 9110)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from starlette.responses import StreamingResponse

from app.core.errors import DomainError
from app.storage.base import ObjectStore

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\%;]')


@dataclass(frozen=True)
class Download:
    """What a content route serves: an object of the store under a display name."""

    key: str
    filename: str
    content_type: str
    sha256: str


class RangeNotSatisfiable(DomainError):
    status = 416
    code = "request.range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            "Requested range is outside the content",
            details={"sizeBytes": size},
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name as RFC 5987 `filename*`."""
    fallback = _UNSAFE_ASCII.sub("_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end) inclusive byte range asked for, or None to serve everything.

    Only a single range is honoured; several ranges or a malformed header are ignored (the whole
    content is served, as RFC 9110 allows). A well-formed range outside the content is a 416.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


async def serve(
    store: ObjectStore, download: Download, range_header: str | None, if_range: str | None = None
) -> StreamingResponse:
    size = await store.size(download.key)  # storage.unavailable (503) before any header is sent
    etag = f'"{download.sha256}"'
    if if_range is not None and if_range.strip() != etag:
        range_header = None
    byte_range = parse_range(range_header, size)
    headers = {
        "Content-Type": download.content_type,
        "Content-Disposition": content_disposition(download.filename),
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(store.open(download.key), status_code=200, headers=headers)
    start, end = byte_range
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(store.open(download.key, start, end), status_code=206, headers=headers)

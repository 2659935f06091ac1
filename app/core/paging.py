"""Cursor pagination: `limit` 1..200 (default 50) and an opaque `cursor` from `nextCursor`."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Query

from app.core import ids
from app.core.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# What encode_cursor() makes (unpadded base64url), declared on every cursor parameter and enforced.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_CURSOR = 512


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: Any  # the sort key of the last item already seen, or None for the first page


def encode_cursor(after: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"a": after})).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))["a"]
    except Exception:
        value = _BAD
    # The server mints cursors of a string (an id, a path) or a sequence number that fits a BIGINT;
    # anything else (true, 2**63, a float, an object) would reach the database and fail there.
    if isinstance(value, str) and "\x00" not in value:
        return value
    if type(value) is int and 0 <= value < 2**63:
        return value
    raise InvalidRequest(
        "cursor is not a value returned as nextCursor",
        details={"fields": [{"field": "cursor", "in": "query", "message": "invalid cursor", "type": "cursor"}]},
    )


_BAD = object()


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR, pattern=CURSOR_PATTERN, description="nextCursor of the previous page")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def split_page(rows: list[Any], params: PageParams, key) -> tuple[list[Any], str | None]:
    """Rows were fetched with limit+1: the extra row only tells that another page exists."""
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(key(rows[-1]))
    return rows, None


async def fetch_by_id(
    db, stmt, id_column, page: PageParams, *, newest_first: bool = False
) -> tuple[list[Any], str | None]:
    """One page of `stmt`, ordered by its UUIDv7 id column: creation order, or newest first."""
    after = ids.parse_uuid(page.after) if isinstance(page.after, str) else None
    if after is not None:
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    async with db.read() as s:
        rows = list(
            (
                await s.execute(stmt.order_by(id_column.desc() if newest_first else id_column).limit(page.limit + 1))
            ).scalars()
        )
    return split_page(rows, page, lambda row: str(row.id))

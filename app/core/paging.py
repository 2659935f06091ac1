"""Cursor pagination: `limit` 1..200 (default 50) and an opaque `cursor` from `nextCursor`."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Query

from app.core.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: Any  # the sort key of the last item already seen, or None for the first page


def encode_cursor(after: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"a": after})).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return orjson.loads(base64.urlsafe_b64decode(padded.encode()))["a"]
    except Exception:
        raise InvalidRequest("cursor is not a value returned as nextCursor",
                             details={"fields": [{"field": "cursor", "in": "query",
                                                  "message": "invalid cursor", "type": "cursor"}]}) from None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="nextCursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def split_page(rows: list[Any], params: PageParams, key) -> tuple[list[Any], str | None]:
    """Rows were fetched with limit+1: the extra row only tells that another page exists."""
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(key(rows[-1]))
    return rows, None

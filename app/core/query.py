"""Multi-value query filters, accepted both as `status=a&status=b` and as `status[]=a`."""

# No `from __future__ import annotations`: the annotations below must be real objects for FastAPI.
from typing import Annotated, Any

from fastapi import Query
from starlette.requests import HTTPConnection

from app.core.errors import InvalidRequest


def multi(name: str, item_type: Any, description: str = ""):
    def dependency(
        plain: Annotated[list[item_type] | None, Query(alias=name, description=description)] = None,
        bracketed: Annotated[list[item_type] | None, Query(alias=f"{name}[]", include_in_schema=False)] = None,
    ) -> list[Any] | None:
        values = [*(plain or []), *(bracketed or [])]
        return values or None

    return dependency


def refuse_unstorable_query(conn: HTTPConnection) -> None:
    """App-wide dependency: a NUL in a query parameter is 400 naming it (PostgreSQL cannot compare text
    with NUL, so it would otherwise surface as a 500 on one backend and match nothing on the other)."""
    for key, value in conn.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            name = key.replace("\x00", "\\u0000")
            raise InvalidRequest(f"Invalid request: {name}: NUL characters (\\u0000) are not allowed",
                                 details={"fields": [{"field": name, "in": "query", "type": "value_error",
                                                      "message": "NUL characters (\\u0000) are not allowed"}]})

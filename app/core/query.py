"""Multi-value query filters, accepted both as `status=a&status=b` and as `status[]=a`."""

# No `from __future__ import annotations`: the annotations below must be real objects for FastAPI.
import re
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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


def _refuse(name: str, message: str, kind: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid request: {name}: {message}",
        details={"fields": [{"field": name, "in": "query", "type": kind, "message": message}]},
    )


_INTEGER = re.compile(r"^-?[0-9]{1,19}$")


def _declared(route: Any) -> dict[str, type | None]:
    """The route's query parameters (its own and its dependencies'), by wire name, with the scalar type
    a strict check applies to (int, bool) or None. Kept on the route (routes are not hashable)."""
    cached = getattr(route, "_bctrl_query", None)
    if cached is not None:
        return cached
    declared: dict[str, type | None] = {}
    for field in _query_fields(route.dependant):
        annotation = field.field_info.annotation
        scalars = set(_flatten(annotation))
        strict = bool if scalars == {bool} else int if scalars == {int} else None
        declared[field.alias] = strict
    route._bctrl_query = declared
    return declared


def _query_fields(dependant: Any) -> list[Any]:
    found, pending = [], [dependant]
    while pending:
        current = pending.pop()
        found.extend(current.query_params)
        pending.extend(current.dependencies)
    return found


def _flatten(annotation: Any) -> list[Any]:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (list, Union, UnionType) or (args and get_origin(annotation) is not Literal):
        return [x for a in args for x in _flatten(a)]
    return [annotation]


def check_query(conn: HTTPConnection) -> None:
    """App-wide dependency on every route, so no route can forget it:
    - an unknown query parameter is 400 naming it (a typo in a filter would otherwise return everything);
    - a NUL is 400 (PostgreSQL cannot compare text with NUL: a 500 on one backend, no match on the other);
    - strict scalars: integers are digits (no `1.5`, `+5`), booleans are `true` or `false` (no `yes`, `1`)."""
    route = conn.scope.get("route")
    declared = _declared(route) if route is not None and hasattr(route, "dependant") else None
    for key, value in conn.query_params.multi_items():
        name = key.replace("\x00", "\\u0000")
        if "\x00" in key or "\x00" in value:
            raise _refuse(name, "NUL characters (\\u0000) are not allowed", "value_error")
        if declared is None:
            continue
        if key not in declared:
            known = ", ".join(sorted(k for k in declared if not k.endswith("[]"))) or "none"
            raise _refuse(name, f"unknown query parameter (this route takes: {known})", "extra_forbidden")
        strict = declared[key]
        if strict is int and not _INTEGER.match(value):
            raise _refuse(name, "must be an integer (digits only)", "int_type")
        if strict is bool and value not in ("true", "false"):
            raise _refuse(name, "must be true or false", "bool_type")

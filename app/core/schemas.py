"""Wire conventions shared by every schema: camelCase, ISO timestamps, the error envelope."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, ClassVar, get_args, get_origin

from fastapi import Header
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from app.core.clock import iso
from app.core.errors import InvalidRequest

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]
# Surrounding whitespace is stripped, so a name must hold something else (`\S`, for the description).
NOT_BLANK = Field(json_schema_extra={"pattern": r"\S"})
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), NOT_BLANK]
JsonObject = dict[str, Any]
# HTTP strips a header value's surrounding spaces, so the pattern says a key has none (1..200 characters).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[^ \t](.*[^ \t])?$",
        description="Replays the first successful response",
    ),
]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def storable_problem(value: Any, path: str) -> tuple[str, str] | None:
    """(where, what) for the first part of a JSON value no database column can hold, else None.

    PostgreSQL refuses NUL in text and JSONB (SQLite would store it: both refuse it here), and no
    integer column or JSON number outside a signed 64-bit range survives both backends."""
    if isinstance(value, str):
        return (path, "NUL characters (\\u0000) are not allowed") if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT_MIN <= value <= INT_MAX else (path, "integers must fit in 64 bits (signed)")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return where.replace("\x00", "\\u0000"), "NUL characters (\\u0000) are not allowed in keys"
            if found := storable_problem(item, where):
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if found := storable_problem(item, f"{path}.{i}" if path else str(i)):
                return found
    return None


class RequestModel(WireModel):
    """Request bodies reject unknown fields, so a typo is a 400 naming the field, not a silent no-op.

    Strict types, as the contract says integer or boolean: `"600"` is not 600 and `0` is not false
    (an integer is still a number where a float is asked for, and a whole float such as `600.0` is an
    integer, as JSON Schema counts it: some JSON encoders write every number that way)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # One check for every body, nested models and free-form metadata included, before any field.
        if found := storable_problem(data, ""):
            where, what = found
            raise InvalidRequest(
                f"Invalid request: {where or 'body'}: {what}",
                details={"fields": [{"field": where or "body", "in": "body", "message": what, "type": "value_error"}]},
            )
        if isinstance(data, dict):
            integers = _integer_fields(cls)
            whole = {
                key: int(value)
                for key, value in data.items()
                if key in integers and isinstance(value, float) and value.is_integer() and INT_MIN <= value <= INT_MAX
            }
            if whole:
                data = {**data, **whole}
        return data


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """Wire names (alias and name) of a model's fields typed `int` or `int | None`, computed once per model."""
    names = set()
    for name, field in model.model_fields.items():
        kinds = {_bare(a) for a in get_args(field.annotation) or (field.annotation,) if a is not type(None)}
        if kinds == {int}:
            names |= {name, field.alias or name}
    return frozenset(names)


def _bare(annotation: Any) -> Any:
    """`Annotated[int, Field(...)]` -> int (a constrained integer is an integer too)."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


class ErrorOut(WireModel):
    error: str = Field(description="Human-readable message; do not branch on it")
    code: str = Field(description="Stable dot-namespaced code, e.g. runtime.not_found")
    request_id: str | None = Field(description="Also sent as the x-request-id header")
    details: JsonObject = Field(default_factory=dict)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can return."""
    described = {
        400: "Invalid request (`request.invalid`, details.fields names the bad fields)",
        401: "Missing or invalid API key (`auth.required`)",
        404: "Not found, or owned by another account",
        409: "Conflict with the resource's current state",
        413: "Body too large (`request.too_large`)",
        429: "Capacity or rate limit; see Retry-After",
        503: "Browser host unavailable",
    }
    return {s: {"model": ErrorOut, "description": described.get(s, "Error")} for s in (401, *statuses)}


class Deleted(WireModel):
    id: str
    deleted: bool = True


class ListOut(WireModel):
    """A page of a list: `data`, the same items under the resource's name (the seed shape), `nextCursor`."""

    resource: ClassVar[str]
    item: ClassVar[type]

    @classmethod
    def of(cls, rows: list[Any], next_cursor: str | None):
        """From database rows, each turned into the item model with its own `of`."""
        items = [cls.item.of(row) for row in rows]
        return cls(data=items, next_cursor=next_cursor, **{cls.resource: items})

    @model_serializer(mode="wrap")
    def _items_once(self, handler, info):  # no return annotation: the API description keeps the fields
        if info.include or info.exclude:  # a partial dump picks its own fields
            return handler(self)
        # The two lists are the same items: serialise them once, then share the result.
        data = handler(self.model_copy(update={self.resource: []}))
        data[self.resource] = data["data"]  # one-word names: the same by alias or by name
        return data


def list_model(item: type[WireModel], resource: str) -> type[ListOut]:
    model = create_model(
        f"{item.__name__.removesuffix('Out')}List",
        __base__=ListOut,
        data=(list[item], ...),
        **{resource: (list[item], Field(description="Same list as `data`, under the resource name"))},
        next_cursor=(str | None, ...),
    )
    model.resource, model.item = resource, item
    return model

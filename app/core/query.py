"""Multi-value query filters, accepted both as `status=a&status=b` and as `status[]=a`."""

# No `from __future__ import annotations`: the annotations below must be real objects for FastAPI.
from typing import Annotated, Any

from fastapi import Query


def multi(name: str, item_type: Any, description: str = ""):
    def dependency(
        plain: Annotated[list[item_type] | None, Query(alias=name, description=description)] = None,
        bracketed: Annotated[list[item_type] | None, Query(alias=f"{name}[]", include_in_schema=False)] = None,
    ) -> list[Any] | None:
        values = [*(plain or []), *(bracketed or [])]
        return values or None

    return dependency

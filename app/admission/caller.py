"""Whether the caller of the request being served is still there, for starts that wait in the queue.

A route that lets a start wait sets `is_gone` (app/admission/deps.py); the queue asks it between looks
so that a client that hung up holds no place. Nothing here knows HTTP: it is a function or nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

Gone = Callable[[], Awaitable[bool]]

_gone: ContextVar[Gone | None] = ContextVar("admission_caller_gone", default=None)


def set_gone(check: Gone | None) -> None:
    _gone.set(check)


def gone_check() -> Gone | None:
    return _gone.get()

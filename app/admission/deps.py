"""The route dependency that lets a waiting start notice its client hanging up."""

from __future__ import annotations

from fastapi import Request

from app.admission import caller


async def watch_caller(request: Request) -> None:
    """Routes whose starts may wait for a slot: the queue polls the connection between its looks
    (the ASGI server does not cancel a handler whose client went away)."""
    caller.set_gone(request.is_disconnected)

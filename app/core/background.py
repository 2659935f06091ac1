"""Stopping a background task that loops for ever."""

from __future__ import annotations

import asyncio


async def stop(task: asyncio.Task | None) -> None:
    """Cancel `task` until it is done. Once is not always enough: on Python 3.11 `asyncio.wait_for` (in
    libraries too) can swallow a cancellation that arrives as what it waits for completes, and a loop
    that lost its cancellation sleeps on while shutdown waits for it for ever."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1)

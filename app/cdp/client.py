"""A small CDP client over one websocket: commands with ids, flattened sessions, event callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(__name__)

EventHandler = Callable[[str, dict[str, Any], str | None], Awaitable[None] | None]


class CdpError(Exception):
    pass


class CdpClient:
    def __init__(self, ws: ClientConnection, on_event: EventHandler) -> None:
        self.ws = ws
        self.on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str, on_event: EventHandler, max_size: int | None = None) -> CdpClient:
        """`max_size` caps one message (None: the browser is ours to trust, e.g. a screenshot's size)."""
        ws = await connect(url, max_size=max_size, compression=None, ping_interval=None, open_timeout=10)
        client = cls(ws, on_event)
        client._reader = asyncio.create_task(client._read(), name="cdp-reader")
        return client

    async def send(
        self, method: str, params: dict | None = None, session_id: str | None = None, timeout: float = 10.0
    ) -> dict:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            await self.ws.send(orjson.dumps(message).decode())
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(ident, None)

    def send_nowait(self, method: str, params: dict | None = None, session_id: str | None = None) -> None:
        """Fire and forget (errors such as a target that just closed are expected and ignored)."""
        task = asyncio.create_task(self._quiet(method, params, session_id))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _quiet(self, method: str, params: dict | None, session_id: str | None) -> None:
        with contextlib.suppress(CdpError, TimeoutError, Exception):
            await self.send(method, params, session_id)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                ident = message.get("id")
                if ident is not None:
                    future = self._pending.get(ident)
                    if future is not None and not future.done():
                        if "error" in message:
                            future.set_exception(CdpError(message["error"].get("message", "CDP error")))
                        else:
                            future.set_result(message.get("result", {}))
                    continue
                result = self.on_event(message.get("method", ""), message.get("params", {}), message.get("sessionId"))
                if asyncio.iscoroutine(result):
                    await result
        except ConnectionClosed:
            # The browser went away (stopped, crashed, its socket closed): the owner learns it from `closed`.
            log.debug("cdp_connection_closed")
        except Exception:
            log.warning("cdp_reader_failed", exc_info=True)
            # Close the socket so the browser stops queuing frames for a reader that is gone.
            with contextlib.suppress(Exception):
                await self.ws.close()
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("connection closed"))
            self.closed.set()

    async def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                await self.ws.close()
        finally:  # even when the close itself is cancelled: no reader left behind
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader

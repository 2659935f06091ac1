"""The proxied sockets this process holds, so that stop, expiry and shutdown can close them."""

from __future__ import annotations

import uuid
from collections import defaultdict

from app.core.ports import Closable


class Hub:
    def __init__(self) -> None:
        self._by_connection: dict[uuid.UUID, set[Closable]] = defaultdict(set)

    def add(self, session: Closable) -> None:
        self._by_connection[session.connection_id].add(session)

    def remove(self, session: Closable) -> None:
        sessions = self._by_connection.get(session.connection_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_connection[session.connection_id]

    async def close_connection(self, connection_id: uuid.UUID, code: int, reason: str) -> None:
        for session in list(self._by_connection.get(connection_id, ())):
            session.close(code, reason)

    async def close_run(self, run_id: uuid.UUID, code: int, reason: str) -> None:
        for sessions in list(self._by_connection.values()):
            for session in list(sessions):
                if session.run_id == run_id:
                    session.close(code, reason)

    async def close_all(self, code: int, reason: str) -> None:
        for sessions in list(self._by_connection.values()):
            for session in list(sessions):
                session.close(code, reason)

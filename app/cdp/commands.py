"""Per-method statistics of the CDP commands a client sends, without parsing the traffic.

Client-to-browser frames are scanned (not parsed) for their `id` and `method`; a browser reply
starts with `{"id":N,` so its id is read from the first bytes. Statistics are aggregated per
method and written as one `connection.command` event per flush, so a chatty client cannot flood
the events table.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

_METHOD = re.compile(r'"method"\s*:\s*"([A-Za-z0-9_.]{1,100})"')
_ID = re.compile(r'"id"\s*:\s*(\d{1,15})')
_MAX_PENDING = 10_000


@dataclass
class MethodStats:
    count: int = 0
    errors: int = 0
    answered: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class CommandStats:
    methods: dict[str, MethodStats] = field(default_factory=dict)
    pending: dict[int, tuple[str, float]] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)

    def on_client(self, frame: str) -> None:
        match = _METHOD.search(frame)
        if match is None:
            return
        method = match.group(1)
        stats = self.methods.get(method)
        if stats is None:
            stats = self.methods[method] = MethodStats()
        stats.count += 1
        ident = _ID.search(frame)
        if ident is not None and len(self.pending) < _MAX_PENDING:
            self.pending[int(ident.group(1))] = (method, time.perf_counter())

    def on_browser(self, frame: str) -> None:
        if not frame.startswith('{"id":'):
            return  # an event, not a reply
        end = frame.find(",", 6, 24)
        if end < 0:
            return
        try:
            ident = int(frame[6:end])
        except ValueError:
            return
        entry = self.pending.pop(ident, None)
        if entry is None:
            return
        method, started = entry
        elapsed = (time.perf_counter() - started) * 1000
        # The command may have been counted in a window that was already drained.
        stats = self.methods.get(method) or self.methods.setdefault(method, MethodStats())
        stats.answered += 1
        stats.total_ms += elapsed
        stats.max_ms = max(stats.max_ms, elapsed)
        if frame.startswith('"error"', end + 1):
            stats.errors += 1

    def drain(self) -> dict | None:
        """The window's aggregate as event data, or None when nothing was sent; starts a new window."""
        if not self.methods:
            return None
        now = time.time()
        data = {
            "windowSeconds": round(now - self.window_start, 3),
            "total": sum(s.count for s in self.methods.values()),
            "methods": [
                {
                    "method": m,
                    "count": s.count,
                    "errors": s.errors,
                    "avgMs": round(s.total_ms / s.answered, 3) if s.answered else None,
                    "maxMs": round(s.max_ms, 3) if s.answered else None,
                }
                for m, s in sorted(self.methods.items(), key=lambda kv: -kv[1].count)
            ],
        }
        self.methods = {}
        self.window_start = now
        return data

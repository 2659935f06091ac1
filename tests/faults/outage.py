"""Helpers shared by the outage tests: a bounded loop of API calls, SSE reading in a thread, and
websocket handshakes whose refusal is read as the HTTP answer it is."""

from __future__ import annotations

import json
import threading
import time

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.e2e.test_streams import sse_frames


def refusal(response: httpx.Response) -> dict:
    """What a user sees of one answer: status, code and Retry-After."""
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    return {"status": response.status_code, "code": code, "retryAfter": response.headers.get("retry-after")}


def ws_attempt(url: str) -> dict:
    """Open a CDP socket: {"status": 101} when it opens, else the refusal's status, code and Retry-After."""
    try:
        with ws_connect(url, open_timeout=10, max_size=None) as sock:
            sock.send('{"id":1,"method":"Browser.getVersion"}')
            json.loads(sock.recv(timeout=10))
            return {"status": 101, "code": None, "retryAfter": None}
    except InvalidStatus as exc:
        response = exc.response
        try:
            code = json.loads(response.body or b"{}").get("code")
        except ValueError:
            code = None
        return {"status": response.status_code, "code": code, "retryAfter": response.headers.get("retry-after")}


def sweep(client: httpx.Client, calls: list[tuple[str, str, dict]], seconds: float, max_rounds: int = 50) -> list:
    """Repeat `calls` for up to `seconds` (and at most `max_rounds` rounds); every answer, labelled."""
    answers, started, rounds = [], time.monotonic(), 0
    while time.monotonic() - started < seconds and rounds < max_rounds:
        rounds += 1
        for method, path, kw in calls:
            try:
                answers.append((f"{method} {path}", refusal(client.request(method, path, timeout=15, **kw))))
            except httpx.HTTPError as exc:
                answers.append((f"{method} {path}", {"status": type(exc).__name__, "code": None, "retryAfter": None}))
    return answers


class StreamReader:
    """Reads an SSE stream on a thread: the frames, and whether and how the stream ended."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.frames: list[tuple[str, str | None, dict]] = []
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, args=(client, path), daemon=True)
        self._thread.start()

    def _read(self, client: httpx.Client, path: str) -> None:
        try:
            with client.stream("GET", path, timeout=httpx.Timeout(60, read=60)) as response:
                assert response.status_code == 200, response.read()
                self.opened.set()
                for frame in sse_frames(response):
                    self.frames.append(frame)
        except BaseException as exc:
            self.error = exc
        finally:
            self.opened.set()
            self.closed.set()

    def last(self, event: str) -> dict | None:
        return next((data for name, _, data in reversed(self.frames) if name == event), None)

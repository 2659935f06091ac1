"""A webhook receiver on 127.0.0.1 for tests: verifies every request with the standardwebhooks library
and records what arrived. `fail_with` makes it answer that status (a receiver that is down), `hang`
makes it hold requests open."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook as Verifier


@dataclass
class Received:
    delivery_id: str
    body: dict
    signatures: list[str]
    headers: dict


@dataclass
class Receiver:
    secret: str | None = None
    fail_with: int | None = None
    hang: float = 0.0
    received: list[Received] = field(default_factory=list)  # verified and answered 2xx
    attempts: int = 0
    bad_signatures: int = 0
    in_flight: int = 0
    max_in_flight: dict = field(default_factory=dict)  # delivery id -> most concurrent requests for it
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = headers.get("webhook-id", "")
                with receiver._lock:
                    receiver.attempts += 1
                    receiver.in_flight += 1
                    now = receiver.max_in_flight.get(delivery, 0)
                    receiver._open = getattr(receiver, "_open", {})
                    receiver._open[delivery] = receiver._open.get(delivery, 0) + 1
                    receiver.max_in_flight[delivery] = max(now, receiver._open[delivery])
                try:
                    if receiver.hang:
                        threading.Event().wait(receiver.hang)
                    try:
                        Verifier(receiver.secret).verify(body, headers)
                    except Exception:
                        with receiver._lock:
                            receiver.bad_signatures += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                    status = receiver.fail_with or 204
                    if status < 300:
                        with receiver._lock:
                            receiver.received.append(
                                Received(delivery, json.loads(body), headers["webhook-signature"].split(" "), headers)
                            )
                    self.send_response(status)
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1
                        receiver._open[delivery] -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def types(self) -> list[str]:
        return [r.body["type"] for r in self.received]

    async def wait_for(self, predicate, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"receiver: timed out; got {self.types()} ({self.attempts} attempts)")
            await asyncio.sleep(0.05)

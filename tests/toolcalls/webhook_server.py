"""A tool's webhook served by the test on 127.0.0.1: it verifies the standardwebhooks signature with the
secret it is given, and answers by path: /sum (a + b), /slow (sleeps past any timeout), /garbage (not
JSON), /wrong (JSON the output schema refuses), /hang (never answers; notes when the caller gave up)."""

from __future__ import annotations

import http.server
import json
import select
import threading
import time

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class WebhookServer:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.seen: list[dict] = []
        self.verified: list[bool] = []
        self.aborted = threading.Event()
        self.hanging = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    if outer.secret is None:  # the secret is unknown to the test: the headers must be there
                        assert all(headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
                    else:
                        Webhook(outer.secret).verify(raw, headers)
                    outer.verified.append(True)
                except (WebhookVerificationError, Exception):
                    outer.verified.append(False)
                    self._answer(401, b'{"error":"bad signature"}')
                    return
                payload = json.loads(raw)
                outer.seen.append(payload)
                path = self.path.split("?")[0]
                if path == "/sum":
                    body = {"sum": payload["input"]["a"] + payload["input"]["b"], "callId": payload["id"]}
                    self._answer(200, json.dumps(body).encode())
                elif path == "/slow":
                    time.sleep(3)
                    self._answer(200, b'{"sum": 0}')
                elif path == "/garbage":
                    self._answer(200, b"<html>surprise</html>", "text/html")
                elif path == "/wrong":
                    self._answer(200, b'{"sum": "not a number"}')
                elif path == "/hang":
                    outer.hanging.set()
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline:
                        ready, _, _ = select.select([self.connection], [], [], 0.1)
                        if ready and not self.connection.recv(1, 2):  # MSG_PEEK: b"" = the caller closed
                            outer.aborted.set()
                            return
                else:
                    self._answer(404, b"{}")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

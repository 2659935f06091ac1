"""A stand-in Docker engine on a Unix socket, for a server with BCTRL_DRIVER=docker where no engine runs:
it speaks the Engine API's HTTP for what a server asks while idle (version, ping, the container list)."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/_ping"):
            self._answer(b"OK", "text/plain")
        elif path.endswith("/version"):
            self._answer(json.dumps({"ApiVersion": "1.43", "MinAPIVersion": "1.12", "Version": "24.0.0"}).encode())
        elif path.endswith("/containers/json"):
            self._answer(b"[]")
        else:
            self._answer(json.dumps({"message": "not in the stand-in"}).encode(), status=404)

    do_HEAD = do_GET

    def _answer(self, body: bytes, content_type: str = "application/json", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Api-Version", "1.43")
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class DockerStandIn:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.server = _Server(str(socket_path), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.socket_path.unlink(missing_ok=True)

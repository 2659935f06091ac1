"""Security review of issue 15, webhook tools (app/toolcalls/runners.py `webhook`, `_webhook_addresses`).

A webhook tool is a URL an account chooses that the control plane POSTs to and whose JSON answer it hands
back as the call's result: a server-side request on the account's behalf. These tests prove where it
reaches what a browser may not, and where its limits do not hold."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import uuid
from urllib.parse import urlsplit

from app.egress import service as egress_service
from app.runtimes.models import Runtime
from app.toolcalls import runners
from app.toolcalls.env import ToolEnv
from app.toolcalls.failures import ToolFailed
from app.tools import service as tools_service
from app.tools.models import CustomTool

V = {"BCTRL-Version": "2026-10-03"}
ANY_OBJECT = {"type": "object"}


async def make_tool(api, url: str, output_schema: dict | None = None, timeout_ms: int = 5000) -> dict:
    made = await api.post(
        "/v1/tools",
        json={
            "name": f"t{uuid.uuid4().hex[:10]}",
            "implementation": {"type": "webhook", "url": url, "timeoutMs": timeout_ms},
            "inputSchema": ANY_OBJECT,
            "outputSchema": output_schema if output_schema is not None else {},
        },
        headers=V,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def call(api, ref: str, input: dict | None = None, wait: int = 30) -> dict:
    made = await api.post(f"/v1/tools/{ref}/calls?wait={wait}", json={"input": input or {}}, headers=V)
    assert made.status_code == 201, made.text
    return made.json()


async def test_a_webhook_tool_cannot_reach_another_accounts_browser_debugging_port(server, api):
    """Account B runs a browser; account A's webhook tool points at that browser's DevTools HTTP port on
    the host. The egress policy refuses debugging ports to browsers, but the webhook executor builds its
    policy without the driver's ports and never asks `devtools_listener`: the POST goes through, Chromium
    answers /json/list (any method), and A reads B's pages (URLs, titles, webSocketDebuggerUrl) as the
    tool's result. /json/close/{id} closes them the same way."""
    async with await server.client("victim") as victim:
        rt = (await victim.post("/v1/runtimes", json={"start": True})).json()
        try:
            async with server.ctx.db.read() as s:
                row = await s.get(Runtime, uuid.UUID(rt["id"]))
            ws = urlsplit(row.driver_state["wsUrl"])
            devtools = f"http://127.0.0.1:{ws.port}/json/list"
            tool = await make_tool(api, devtools)
            done = await call(api, tool["id"])
            leaked = (await api.get(f"/v1/tool-calls/{done['id']}/result", headers=V)).text
            assert "webSocketDebuggerUrl" not in leaked, leaked[:300]
            assert done["status"] == "failed" and done["error"]["code"] == "tool.not_allowed", done
        finally:
            await victim.post(f"/v1/runtimes/{rt['id']}/stop")


class BigAnswer:
    """A webhook that answers 200 with a 64 MiB JSON string and counts what the caller took off it."""

    SIZE = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.sent = 0
        self.done = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(outer.SIZE))
                self.end_headers()
                chunk = b"a" * 65536
                try:
                    self.wfile.write(b'"')
                    outer.sent += 1
                    while outer.sent < outer.SIZE - len(chunk):
                        self.wfile.write(chunk)
                        outer.sent += len(chunk)
                    self.wfile.write(b"a" * (outer.SIZE - outer.sent - 1) + b'"')
                    outer.sent = outer.SIZE
                except OSError:
                    pass
                finally:
                    outer.done.set()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/big"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_a_webhook_answer_larger_than_the_limit_is_not_read_whole(server, api):
    """The 1 MiB answer limit is checked on `response.content`, i.e. after httpx has buffered the whole
    body in the control plane's memory: a tool that answers gigabytes (within its timeout, up to 300 s)
    makes the server hold them all. The limit must stop the read: at most a few MiB may be taken."""
    big = BigAnswer()
    try:
        tool = await make_tool(api, big.url, output_schema={})
        done = await call(api, tool["id"])
        assert done["status"] == "failed" and done["error"]["code"] == "tool.output_invalid", done
        big.done.wait(10)
        assert big.sent < 16 * 1024 * 1024, f"the server read {big.sent} bytes of an over-limit answer"
    finally:
        big.close()


class Hit:
    """A listener that notes every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.hits.append(self.path)
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_the_address_checked_is_the_address_called(server, api, monkeypatch):
    """The webhook check used to resolve the tool's host name, then httpx resolved it again to
    connect: a name that answers an allowed address first and the control plane's next (DNS rebinding,
    TTL 0) gets the POST into a refused service. Here the control plane's service is a local listener
    (made a control-plane endpoint for the test), the name answers 10.255.255.1 to the check and
    127.0.0.1 to the connect: the listener must see nothing."""
    plane = Hit()
    real = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host in ("rebind.test", b"rebind.test"):  # anyio asks with the IDNA-encoded bytes
            asked.append(host)
            return real("10.255.255.1" if len(asked) == 1 else "127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    try:
        tool = await make_tool(api, f"http://rebind.test:{plane.port}/hook", output_schema={})
        async with server.ctx.db.read() as s:
            row = await s.get(CustomTool, uuid.UUID(tool["id"]))
        resolved = tools_service.of_custom(row)
        monkeypatch.setattr(egress_service, "control_plane", lambda settings: [("127.0.0.1", plane.port)])
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        env = ToolEnv(account_id=row.account_id, space_id=row.space_id)
        with contextlib.suppress(ToolFailed):
            await runners.webhook(server.ctx, env, resolved, {}, uuid.uuid4())
        assert plane.hits == [], "the POST reached a control-plane service the check refuses"
    finally:
        plane.close()

"""Browser tools called directly, in process over both backends, in a real Chromium: browser.pages.open
and list, and secrets.fill typing a vault login (with its TOTP code of now) into a local sign-in page of
an allowed origin, refused on another origin; the values are never in the call's record, its result or
any event of the run."""

from __future__ import annotations

import http.server
import threading
import uuid
from urllib.parse import parse_qs

import pyotp
import pytest
from sqlalchemy import select

from app.runs.models import RunEvent
from app.toolcalls.models import ToolCall

V = {"BCTRL-Version": "2026-10-03"}
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "pw-Zq9!fill-never-shown"
LOGIN_PAGE = b"""<!doctype html><title>Sign in</title>
<form method="post" action="/login">
  <label>Search <input type="search" name="q"></label>
  <label>User <input type="text" name="user" autocomplete="username"></label>
  <label>Password <input type="password" name="pass"></label>
  <label>Code <input type="text" name="otp" autocomplete="one-time-code"></label>
  <button type="submit">Sign in</button>
</form>"""


class LoginSite:
    """A sign-in page on 127.0.0.1 that keeps what was posted to it."""

    def __init__(self) -> None:
        self.posted: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _page(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._page(LOGIN_PAGE)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posted.append({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                self._page(b"<!doctype html><title>Welcome</title><p>signed in</p>")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sites():
    allowed, other = LoginSite(), LoginSite()
    yield allowed, other
    allowed.close()
    other.close()


async def call(api, ref: str, input: dict, runtime_id: str):
    made = await api.post(f"/v1/tools/{ref}/calls?wait=30", json={"input": input, "runtimeId": runtime_id}, headers=V)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] in ("succeeded", "failed"), body
    return body


async def result_of(api, call_id: str):
    return (await api.get(f"/v1/tool-calls/{call_id}/result", headers=V)).json()


async def test_secrets_fill_types_a_login_only_on_an_allowed_origin(server, api, stop_afterwards, sites):
    allowed, other = sites
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    path = f"sites/{uuid.uuid4().hex[:8]}"
    made = await api.post(
        "/v1/secrets",
        json={
            "type": "login",
            "path": path,
            "username": "alice",
            "password": PASSWORD,
            "totp": SEED,
            "origins": [allowed.url],
        },
        headers=V,
    )
    assert made.status_code == 201, made.text

    opened = await call(api, "browser.pages.open", {"url": allowed.url + "/signin"}, runtime["id"])
    assert opened["status"] == "succeeded", opened
    page = await result_of(api, opened["id"])
    assert page["url"] == allowed.url + "/signin" and page["title"] == "Sign in" and page["active"] is True
    listed = await result_of(api, (await call(api, "browser.pages.list", {}, runtime["id"]))["id"])
    assert page["id"] in [p["id"] for p in listed["pages"]]

    filled = await call(api, "secrets.fill", {"secret": path, "submit": True}, runtime["id"])
    assert filled["status"] == "succeeded", filled
    assert await result_of(api, filled["id"]) == {"filled": ["username", "password", "totp"], "origin": allowed.url}
    assert len(allowed.posted) == 1
    posted = allowed.posted[0]
    assert posted["user"] == "alice" and posted["pass"] == PASSWORD and posted.get("q", "") == ""
    assert pyotp.TOTP(SEED).verify(posted["otp"], valid_window=1)

    # Another origin: refused, nothing typed, nothing posted.
    await call(api, "browser.pages.open", {"url": other.url + "/signin"}, runtime["id"])
    refused = await call(api, "secrets.fill", {"secret": path, "submit": True}, runtime["id"])
    assert refused["status"] == "failed" and refused["error"]["code"] == "secrets.origin_not_allowed", refused
    assert other.posted == []

    # No value anywhere: the records, their results, the run's events.
    calls = await api.get(f"/v1/tool-calls?runtimeId={runtime['id']}", headers=V)
    assert len(calls.json()["data"]) == 5
    async with server.ctx.db.read() as s:
        rows = list(
            (await s.execute(select(ToolCall).where(ToolCall.runtime_id == uuid.UUID(runtime["id"])))).scalars()
        )
        events = list(
            (await s.execute(select(RunEvent).where(RunEvent.run_id == uuid.UUID(runtime["activeRunId"])))).scalars()
        )
    fill_rows = [r for r in rows if r.tool_name == "secrets.fill"]
    assert all(r.input == {"secret": path, "submit": True} for r in fill_rows)
    texts = [calls.text, repr([(r.input, r.result, r.error) for r in rows]), repr([(e.type, e.data) for e in events])]
    texts.append((await api.get("/v1/events", params={"run": runtime["activeRunId"], "limit": 200}, headers=V)).text)
    for text in texts:
        assert PASSWORD not in text and posted["otp"] not in text and SEED not in text
    assert any(e.type == "tool_call.succeeded" for e in events)

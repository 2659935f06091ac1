"""Security review of issue 15, `secrets.fill` (app/toolcalls/runners.py) and where a filled login's values
go afterwards: the rule is that a secret's value never reaches the LLM, an event, a log or a trace.

Tools are called directly (`POST /v1/tools/{ref}/calls` with `runtimeId`), in a real Chromium, with the
stand-in LLM behind the account's AI credential (a stagehand tool in a direct call uses it)."""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
import uuid
from pathlib import Path

import orjson
import pytest

from app.invocations import agents
from tests.ai import conftest as ai_tier
from tests.support import eventually
from tests.toolcalls.test_browser_tools import LoginSite

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}
PASSWORD = "pw-Review15-never-to-the-model"
USERNAME = "alice-review15"


@pytest.fixture
def site():
    s = LoginSite()
    yield s
    s.close()


@pytest.fixture
async def credential(api, llm):
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def call(api, ref: str, input: dict, runtime_id: str) -> dict:
    made = await api.post(f"/v1/tools/{ref}/calls?wait=30", json={"input": input, "runtimeId": runtime_id}, headers=V)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] in ("succeeded", "failed"), body
    return body


async def filled_page(api, stop_afterwards, site) -> tuple[dict, str]:
    """A browser on the allowed sign-in page with the login filled in (not submitted)."""
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    path = f"review15/{uuid.uuid4().hex[:8]}"
    made = await api.post(
        "/v1/secrets",
        json={"type": "login", "path": path, "username": USERNAME, "password": PASSWORD, "origins": [site.url]},
        headers=V,
    )
    assert made.status_code == 201, made.text
    opened = await call(api, "browser.pages.open", {"url": site.url + "/signin"}, runtime["id"])
    assert opened["status"] == "succeeded", opened
    filled = await call(api, "secrets.fill", {"secret": path}, runtime["id"])
    assert filled["status"] == "succeeded", filled
    return runtime, path


async def test_a_filled_password_is_not_sent_to_the_model_by_the_next_stagehand_step(
    server, api, llm, credential, stop_afterwards, site
):
    """After `secrets.fill`, every stagehand tool (act, observe, extract; and the browser-use engine) sends
    the model the page's aria snapshot, and Playwright's AI-mode snapshot prints each textbox's current
    value: `- textbox "Password" [ref=e6]: <the password>`. The password (and the username, and a TOTP
    code) go to the LLM provider in the next step's prompt."""
    runtime, _ = await filled_page(api, stop_afterwards, site)
    llm.then({"tool": "report_elements", "args": {"elements": []}})
    await call(api, "stagehand.observe", {"instruction": "What is on the page?"}, runtime["id"])
    sent = [orjson.dumps(r["body"]).decode() for r in llm.requests if r["path"].endswith("/chat/completions")]
    assert sent, "the stagehand step did not ask the model"
    assert not any(PASSWORD in body for body in sent), "the filled password was sent to the LLM"


async def test_the_fill_leaves_no_value_in_logs(server, api, stop_afterwards, site, capfd):
    """Guard (passes today): the values of a fill are in no log line of the server (structlog output)."""
    await filled_page(api, stop_afterwards, site)
    out, err = capfd.readouterr()
    assert PASSWORD not in out + err and "request" in out + err


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
async def test_a_task_filling_a_login_leaves_no_value_behind(server, api, llm, credential, site, capfd):
    """Guard (passes today): a task whose model opens the sign-in page, fills the login and finishes puts no
    value in its output, events, trace, conversation, tool calls, the model's prompts, or the server log."""
    path = f"review15/{uuid.uuid4().hex[:8]}"
    made = await api.post(
        "/v1/secrets",
        json={"type": "login", "path": path, "username": USERNAME, "password": PASSWORD, "origins": [site.url]},
        headers=V,
    )
    assert made.status_code == 201, made.text
    agent = await api.post(
        "/v1/agents",
        json={"name": "signer", "model": "standin-model", "tools": ["browser.pages.open", "secrets.fill"]},
        headers=V,
    )
    assert agent.status_code == 201, agent.text
    llm.then(
        {"tool": "browser_pages_open", "args": {"url": site.url + "/signin"}},
        {"tool": "secrets_fill", "args": {"secret": path}},
        {"tool": "done", "args": {"result": "signed in"}},
    )
    task = (await api.post("/v1/tasks", json={"agent": "signer", "input": "sign in"}, headers=V)).json()
    done = (await api.get(f"/v1/tasks/{task['id']}", params={"wait": 60}, headers=V)).json()
    assert done["status"] == "succeeded", done
    fills = await api.get("/v1/tool-calls", params={"taskId": task["id"], "tool": "secrets.fill"}, headers=V)
    assert [c["status"] for c in fills.json()["data"]] == ["succeeded"], fills.text  # the fill did happen
    texts = [orjson.dumps(done).decode()]
    for url, params in (
        ("/v1/events", {"task": task["id"], "limit": 200}),
        (f"/v1/traces/{task['id']}", {}),
        (f"/v1/conversations/{done['conversationId']}", {}),
        ("/v1/tool-calls", {"taskId": task["id"]}),
    ):
        got = await api.get(url, params=params, headers=V)
        assert got.status_code == 200, (url, got.text)
        texts.append(got.text)
    texts += [orjson.dumps(r["body"]).decode() for r in llm.requests]
    out, err = capfd.readouterr()
    texts.append(out + err)
    for text in texts:
        assert PASSWORD not in text


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
async def test_submitting_a_filled_login_sends_nothing_to_a_password_leak_service(
    server, api, stop_afterwards, site, no_traffic_off_this_machine
):
    """`secrets.fill` with `submit: true`: Chromium's password leak check runs on the submit and asks
    passwordsleakcheck-pa.googleapis.com (a hash prefix of the username and password) through the egress
    proxy, which resolves the name in this process (the test's guard sees the lookup). The feature switch
    `PasswordLeakDetection` is not honoured by this Chromium; the managed policy
    `PasswordLeakDetectionEnabled: false` is. No derivative of a secret may leave for a third party."""
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    path = f"review15/{uuid.uuid4().hex[:8]}"
    made = await api.post(
        "/v1/secrets",
        json={"type": "login", "path": path, "username": USERNAME, "password": PASSWORD, "origins": [site.url]},
        headers=V,
    )
    assert made.status_code == 201, made.text
    assert (await call(api, "browser.pages.open", {"url": site.url + "/signin"}, runtime["id"]))[
        "status"
    ] == "succeeded"
    filled = await call(api, "secrets.fill", {"secret": path, "submit": True}, runtime["id"])
    assert filled["status"] == "succeeded", filled
    await eventually(lambda: site.posted)
    # The check follows the submit; give it a few seconds to ask (nothing asks when it is off).
    deadline = asyncio.get_running_loop().time() + 8
    while not no_traffic_off_this_machine and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
    asked = list(no_traffic_off_this_machine)
    no_traffic_off_this_machine.clear()  # reported here, not as the guard's teardown error
    assert not [h for h in asked if "passwordsleakcheck" in h], asked


class Pages:
    """A server on 127.0.0.1 answering GET with the page of the path."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = outer.pages.get(self.path, b"<!doctype html><title>none</title>")
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_a_page_that_navigates_away_during_the_fill_gives_the_password_to_no_other_origin(
    server, api, stop_afterwards
):
    """Finding 5: the allowed sign-in page leaves for another origin the moment the username is typed
    (and takes its password field away), and the other origin's page offers a field marked the way the
    fill used to find the password field. The fill checks the document's origin in the same step as it
    types, so the other origin never gets the password (the old fill typed it there)."""
    allowed, other = Pages(), Pages()
    try:
        allowed.pages["/signin"] = f"""<!doctype html><title>Sign in</title>
<form><input type="text" name="user" autocomplete="username" id="u"><input type="password" name="pass"></form>
<script>
document.getElementById('u').addEventListener('input', () => {{
  const marked = document.querySelector('[data-bctrl-fill=password]');
  if (marked) marked.remove();
  location.href = '{other.url}/forged';
}});
</script>""".encode()
        other.pages["/forged"] = b"""<!doctype html><title>other:</title>
<input type="password" data-bctrl-fill="password" id="p">
<script>
const show = () => { document.title = 'other:' + document.getElementById('p').value; };
document.getElementById('p').addEventListener('input', show);
setInterval(show, 20);
</script>"""
        runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
        stop_afterwards(runtime["id"])
        path = f"review15/{uuid.uuid4().hex[:8]}"
        made = await api.post(
            "/v1/secrets",
            json={"type": "login", "path": path, "username": USERNAME, "password": PASSWORD, "origins": [allowed.url]},
            headers=V,
        )
        assert made.status_code == 201, made.text
        opened = await call(api, "browser.pages.open", {"url": allowed.url + "/signin"}, runtime["id"])
        assert opened["status"] == "succeeded", opened
        await call(api, "secrets.fill", {"secret": path}, runtime["id"])

        async def on_other() -> dict | None:
            listed = await call(api, "browser.pages.list", {}, runtime["id"])
            got = (await api.get(f"/v1/tool-calls/{listed['id']}/result", headers=V)).json()
            return next((p for p in got["pages"] if p["url"].startswith(other.url)), None)

        page = await eventually(on_other)
        assert page["title"] == "other:", page  # its password field is empty
    finally:
        allowed.close()
        other.close()


BROWSER_USE_VENV = Path(os.environ.get("BCTRL_BROWSER_USE_VENV", "/var/cache/bctrl/browser-use-venv"))


@pytest.mark.skipif(
    not agents.installed(BROWSER_USE_VENV), reason=f"browser-use is not installed in {BROWSER_USE_VENV}"
)
async def test_the_browser_use_engine_does_not_send_a_filled_login_to_the_model(make_server, llm, site):
    """After `secrets.fill`, the browser-use engine's page state shows the text inputs' current values (the
    username, a TOTP code; it leaves password values out itself): its every LLM call redacts the values of
    password inputs and filled fields first."""
    async with make_server("sqlite", browser_use_venv=BROWSER_USE_VENV) as srv, await srv.client() as api:
        made = await api.post(
            "/v1/ai/credentials",
            json={
                "provider": "custom",
                "baseUrl": f"{llm.base}/v1",
                "apiKey": "sk-test",
                "defaultModel": "standin-model",
            },
            headers=V,
        )
        assert made.status_code == 201, made.text
        stopped: list[str] = []
        try:
            runtime, _ = await filled_page(api, stopped.append, site)
            action = {"done": {"text": "signed in", "success": True}}
            llm.then(
                {
                    "text": orjson.dumps(
                        {"evaluation_previous_goal": "", "memory": "", "next_goal": "", "action": [action]}
                    ).decode()
                }
            )
            created = await api.post(
                f"/v1/runtimes/{runtime['id']}/invocations",
                json={"action": "browserUse", "instruction": "Say what the form shows", "maxSteps": 2},
            )
            assert created.status_code == 202, created.text
            waited = await api.post(f"/v1/invocations/{created.json()['id']}/wait", json={"timeoutMs": 60_000})
            assert waited.json()["invocation"]["status"] == "succeeded", waited.text
        finally:
            for runtime_id in stopped:
                await api.post(f"/v1/runtimes/{runtime_id}/stop")
    sent = [orjson.dumps(r["body"]).decode() for r in llm.requests if r["path"].endswith("/chat/completions")]
    assert sent and any("Say what the form shows" in body for body in sent), "browser-use did not ask the model"
    assert not any(USERNAME in body or PASSWORD in body for body in sent), "a filled value was sent to the LLM"

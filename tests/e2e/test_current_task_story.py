"""One story through the official 0.3 client, unchanged, against a real server process, Chromium, the
stand-in LLM and pages served by the test: an agent of our own (model standin-model; tools
browser.pages.open, secrets.fill, a webhook tool and human.request) runs a task on a browser the user
names (`metadata.browserId`). It opens a sign-in page on 127.0.0.1 and logs in with a vault `login`
allowed on that page's origin, calls the webhook tool (the test's server verifies its standardwebhooks
signature), asks a person, goes on when `tasks.input` answers, and succeeds with an output matching its
outputSchema. Then the password is nowhere a user or an operator can read: no event of the task or its
conversation, not the trace, no tool call or its result, not the conversation, not the model's prompts,
not the server's log file; and the browser's controller is free again."""

from __future__ import annotations

import base64
import contextlib
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import orjson
import pytest
from bctrl._generated.errors import NotFoundError
from bctrl._generated.types.tool_create_request_zero import ToolCreateRequestZero
from bctrl._generated.types.tool_create_request_zero_implementation import ToolCreateRequestZeroImplementation

from tests.ai import conftest as ai_tier
from tests.e2e.test_current_tasks import settled, setup_agent
from tests.toolcalls.test_browser_tools import LoginSite
from tests.toolcalls.webhook_server import WebhookServer

llm, fresh_script = ai_tier.llm, ai_tier.fresh_script

USERNAME = "story-user"
PASSWORD = "pw-Story15-" + secrets.token_hex(6)
SUM_IN = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
SUM_OUT = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
PLAN = {"type": "object", "properties": {"plan": {"type": "string", "enum": ["basic", "pro"]}}, "required": ["plan"]}
OUTPUT = {
    "type": "object",
    "properties": {"signedIn": {"type": "boolean"}, "total": {"type": "integer"}, "plan": {"type": "string"}},
    "required": ["signedIn", "total", "plan"],
    "additionalProperties": False,
}


@pytest.fixture
def site():
    s = LoginSite()
    yield s
    s.close()


@pytest.fixture
def hook():
    s = WebhookServer()
    yield s
    s.close()


def dumped(value) -> str:
    """What a user reads: a client model as its JSON, anything else as JSON."""
    if hasattr(value, "model_dump"):
        return orjson.dumps(value.model_dump(mode="json", by_alias=True)).decode()
    return orjson.dumps(value, default=str).decode()


def every_event(sdk, **filters) -> list:
    events, cursor = [], None
    while True:
        page = sdk.events.list(**filters, limit=100, cursor=cursor)
        events += page.data
        if not page.has_more:
            return events
        cursor = page.next_cursor


def test_a_task_signs_in_calls_a_webhook_asks_a_person_and_leaves_no_password_behind(
    other_client, live, llm, site, hook
):
    # An account of its own: its AI credential is this module's stand-in LLM (another module's
    # credential on the shared server would point at that module's stand-in).
    sdk = other_client
    unique = uuid.uuid4().hex[:8]
    login = sdk.secrets.create(
        type="login", path=f"story/{unique}", username=USERNAME, password=PASSWORD, origins=[site.url]
    )
    signing_key = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    sdk.secrets.create(type="value", path=f"webhooks/{unique}", value=signing_key)
    hook.secret = signing_key  # the receiver verifies with the key it shares with the tool
    tool_name = f"sum_{unique}"
    sdk.tools.create(
        request=ToolCreateRequestZero(
            name=tool_name,
            implementation=ToolCreateRequestZeroImplementation(
                type="webhook", url=hook.url + "/sum", timeout_ms=5000, auth_secret=f"secret:webhooks/{unique}"
            ),
            input_schema=SUM_IN,
            output_schema=SUM_OUT,
        )
    )
    agent_name = f"story-{unique}"
    setup_agent(sdk, llm, agent_name, ["browser.pages.open", "secrets.fill", tool_name, "human.request"])
    browser = sdk.browsers.create(name=f"story-{unique}", wait=30)
    try:
        story(sdk, live, llm, site, hook, login, tool_name, agent_name, browser)
    finally:
        with contextlib.suppress(NotFoundError):
            sdk.browsers.delete(browser.id)


def story(sdk, live, llm, site, hook, login, tool_name, agent_name, browser) -> None:
    assert browser.status == "running", browser
    run_id = browser.current_run.id
    before = sdk.browsers.control.get(browser.id)

    llm.then(
        {"tool": "browser_pages_open", "args": {"url": f"{site.url}/signin"}},
        {"tool": "secrets_fill", "args": {"secret": login.path, "submit": True}},
        {"tool": tool_name, "args": {"a": 20, "b": 22}},
        {"tool": "human_request", "args": {"prompt": "Which plan?", "schema": PLAN}},
        {"tool": "done", "args": {"signedIn": True, "total": 42, "plan": "pro"}},
    )
    task = sdk.tasks.create(
        agent=agent_name,
        input="Sign in to the shop, add up 20 and 22, ask which plan to buy.",
        metadata={"browserId": browser.id},
        output_schema=OUTPUT,
    )
    assert task.runs == [run_id], task

    waiting = settled(sdk, task.id)
    assert waiting.status == "awaiting_input", (waiting.error_code, waiting.error_message, waiting)
    request = waiting.input_request
    assert (request.kind, request.summary, request.schema_) == ("handoff", "Which plan?", PLAN), request
    # Signed in on the page with the vault's login; the webhook got a call it could verify.
    assert [(p.get("user"), p.get("pass")) for p in site.posted] == [(USERNAME, PASSWORD)]
    assert hook.verified == [True] and hook.seen[0]["input"] == {"a": 20, "b": 22}
    assert hook.seen[0]["taskId"] == task.id
    # The person may answer on the view the request names: it lists the question.
    view = urlsplit(request.view_url)
    assert f"{view.scheme}://{view.netloc}" == live.url and view.path == "/view", request.view_url
    as_view = {"Authorization": f"Bearer {parse_qs(view.query)['token'][0]}"}
    listed = httpx.get(f"{live.url}/view/input-requests", params={"runId": run_id}, headers=as_view)
    assert [r["id"] for r in listed.json()["items"]] == [request.id], listed.text

    answered = sdk.tasks.input(task.id, input={"plan": "pro"}, request_id=request.id)
    assert answered.input_request is None
    done = settled(sdk, task.id)
    assert (done.status, done.error_code) == ("succeeded", None), done
    assert done.output == {"signedIn": True, "total": 42, "plan": "pro"}
    jsonschema.validate(done.output, OUTPUT)
    assert "pro" in dumped(llm.requests[-1]["body"]["messages"][-1])  # the model saw the answer
    assert httpx.get(f"{live.url}/view/state", headers=as_view).status_code == 401  # gone with the request

    events = every_event(sdk, task=task.id)
    types = [e.type for e in events]
    for wanted in ("task.started", "task.awaiting_input", "task.succeeded", "tool_call.secret_filled"):
        assert wanted in types, types
    calls = sdk.tool_calls.list(task_id=task.id, limit=100).data
    assert sorted(c.tool for c in calls) == sorted(
        ["browser.pages.open", "secrets.fill", tool_name, "human.request"]
    ), calls
    assert all(c.status == "succeeded" for c in calls), calls
    readable = {
        "task": dumped(done),
        "events": dumped([e.model_dump(mode="json", by_alias=True) for e in events]),
        "conversation events": dumped(
            [e.model_dump(mode="json", by_alias=True) for e in every_event(sdk, conversation=done.conversation_id)]
        ),
        "trace": dumped(sdk.traces.get(done.trace_id)),
        "tool calls": dumped([c.model_dump(mode="json", by_alias=True) for c in calls]),
        "tool call results": dumped([sdk.tool_calls.result(c.id) for c in calls]),
        "conversation": dumped(sdk.conversations.get(done.conversation_id)),
        "model prompts": dumped([r["body"] for r in llm.requests]),
        "server log": live.log(),
    }
    assert "secret_filled" in readable["events"] and done.trace_id in readable["trace"]
    leaked = [where for where, text in readable.items() if PASSWORD in text]
    assert leaked == [], f"the password is readable in: {leaked}"

    # The controller is back as it was before the task (the browser's own connection, which yields to
    # work asked of the platform), and the browser is the user's again: a browser tool call on it runs.
    assert sdk.browsers.control.get(browser.id).holder == before.holder
    listed = sdk.tools.calls.create("browser.pages.list", input={}, runtime_id=browser.id, wait=30)
    assert listed.status == "succeeded", listed
    assert sdk.browsers.get(browser.id).status == "running"  # the user's browser: it outlives the task

"""Tool calls through the official 0.3 client, unchanged, against a real server and Chromium: a webhook
tool served by the test (signed headers) called with tools.calls.create and read back with
tool_calls.get/list/result; human.request answered with tool_calls.respond (an invalid answer 400, a
second 409) and cancelled; browser tools in a running browser, and 409 browser.control_held while a CDP
client holds it."""

from __future__ import annotations

import time

import pytest
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from bctrl._generated.types.tool_create_request_zero import ToolCreateRequestZero
from bctrl._generated.types.tool_create_request_zero_implementation import ToolCreateRequestZeroImplementation
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique
from tests.toolcalls.webhook_server import WebhookServer

SUM_IN = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
SUM_OUT = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
CODE = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}}, "required": ["code"]}


@pytest.fixture(scope="module")
def hook():
    server = WebhookServer()
    yield server
    server.close()


def wait_status(sdk, call_id: str, status: str):
    deadline = time.monotonic() + 20
    while True:
        got = sdk.tool_calls.get(call_id, wait=5)
        if got.status == status or time.monotonic() > deadline:
            return got


def test_a_webhook_tool_called_directly(sdk, hook):
    name = unique("sum").replace("-", "_")
    tool = sdk.tools.create(
        request=ToolCreateRequestZero(
            name=name,
            implementation=ToolCreateRequestZeroImplementation(type="webhook", url=hook.url + "/sum", timeout_ms=5000),
            input_schema=SUM_IN,
            output_schema=SUM_OUT,
        )
    )
    call = sdk.tools.calls.create(name, input={"a": 20, "b": 22}, wait=20)
    assert call.status == "succeeded" and call.tool == name and call.caller_type == "api", call
    assert call.result_available is True and hook.verified[-1] is True
    assert hook.seen[-1]["id"] == call.id and hook.seen[-1]["tool"]["id"] == tool.id
    assert sdk.tool_calls.result(call.id) == {"sum": 42, "callId": call.id}
    assert sdk.tool_calls.get(call.id).status == "succeeded"
    assert call.id in [c.id for c in sdk.tool_calls.list(tool=name).data]
    bad = sdk.tools.calls.create(name, input={"a": "x"}, wait=20)
    assert bad.status == "failed" and bad.error.code == "tool.input_invalid"
    with pytest.raises(NotFoundError) as missing:
        sdk.tools.calls.create("no_such_tool", input={})
    assert code_of(missing) == "tool.not_found"


def test_human_request_answered_refused_and_cancelled(sdk):
    call = sdk.tools.calls.create("human.request", input={"prompt": "SMS code?", "schema": CODE})
    pending = wait_status(sdk, call.id, "awaiting_input")
    assert pending.status == "awaiting_input" and pending.input_request.prompt == "SMS code?"
    assert pending.input_request.schema_ == CODE and pending.input_request.expires_at
    with pytest.raises(BadRequestError) as invalid:
        sdk.tool_calls.respond(call.id, request={"code": "12"})
    assert code_of(invalid) == "tool_call.response_invalid"
    answered = sdk.tool_calls.respond(call.id, request={"code": "123456"})
    assert answered.status in ("running", "succeeded")
    assert wait_status(sdk, call.id, "succeeded").status == "succeeded"
    assert sdk.tool_calls.result(call.id) == {"value": {"code": "123456"}}
    with pytest.raises(ConflictError) as twice:
        sdk.tool_calls.respond(call.id, request={"code": "654321"})
    assert code_of(twice) == "tool_call.input_already_responded"

    other = sdk.tools.calls.create("human.request", input={"prompt": "Anyone?"})
    assert wait_status(sdk, other.id, "awaiting_input").status == "awaiting_input"
    cancelled = sdk.tool_calls.cancel(other.id)
    assert cancelled.status == "canceled" and cancelled.error.code == "tool_call.canceled"
    with pytest.raises(ConflictError) as late:
        sdk.tool_calls.respond(other.id, request={"x": 1})
    assert code_of(late) == "tool_call.state_invalid"


def test_browser_tools_take_the_browsers_controller(sdk, running, pages):
    opened = sdk.tools.calls.create(
        "browser.pages.open", input={"url": f"{pages.url}/one.html"}, runtime_id=running.id, wait=30
    )
    assert opened.status == "succeeded", opened
    page = sdk.tool_calls.result(opened.id)
    assert page["url"].endswith("/one.html") and page["active"] is True
    listed = sdk.tools.calls.create("browser.pages.list", input={}, runtime_id=running.id, wait=30)
    assert page["id"] in [p["id"] for p in sdk.tool_calls.result(listed.id)["pages"]]
    assert opened.id in [c.id for c in sdk.tool_calls.list(runtime_id=running.id).data]
    with pytest.raises(BadRequestError) as no_browser:
        sdk.tools.calls.create("browser.pages.list", input={})
    assert code_of(no_browser) == "tool.runtime_unavailable"
    before = len(sdk.tool_calls.list(runtime_id=running.id).data)
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(running.current_run.connections.cdp_url)
        try:
            with pytest.raises(ConflictError) as held:
                sdk.tools.calls.create("browser.pages.list", input={}, runtime_id=running.id, wait=5)
            assert code_of(held) == "browser.control_held"
        finally:
            browser.close()
    assert len(sdk.tool_calls.list(runtime_id=running.id).data) == before  # nothing recorded

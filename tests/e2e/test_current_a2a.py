"""A2A 1.0 of a hosted agent through the official 0.3 client, unchanged (`client.agents.a2a.card/rpc`),
against a real server process whose account has the stand-in LLM as its AI credential: the card,
SendMessage blocking until the task ends and GetTask showing the result, a task that asks a person
(INPUT_REQUIRED) answered by a second SendMessage, returnImmediately and CancelTask, ListTasks, JSON-RPC
errors with HTTP 200 and an unknown agent as the SDK's NotFoundError; and a task on a browser whose
human.request a person answers in a view with control, in headless Chromium."""

from __future__ import annotations

import os
import uuid

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import NotFoundError
from bctrl._generated.types import ViewScopeRuntimeInput
from playwright.sync_api import sync_playwright

from tests.ai import conftest as ai_tier
from tests.e2e.test_current_sdk import code_of, unique
from tests.e2e.test_current_views import launch, poll

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

A2A = {"additional_headers": {"A2A-Version": "1.0"}}
SIZE = {"type": "object", "properties": {"size": {"type": "string", "enum": ["S", "M", "L"]}}, "required": ["size"]}
# Where the view page's screenshot goes (for a person to look at), when asked.
SCREENSHOT = os.environ.get("BCTRL_A2A_SCREENSHOT")


@pytest.fixture(scope="module")
def space(sdk):
    made = sdk.spaces.create(name=unique("a2a"))
    yield made.id
    sdk.spaces.delete(made.id, wait=30)


@pytest.fixture(scope="module")
def credential(sdk, llm):
    made = sdk.ai.credentials.create(
        provider="custom",
        base_url=f"{llm.base}/v1",
        api_key="sk-test",
        name=unique("standin"),
        default_model="standin-model",
    )
    yield made
    try:
        sdk.ai.credentials.delete(made.id)
    except NotFoundError:
        pass


@pytest.fixture(scope="module")
def agent(sdk, credential, space):
    return sdk.agents.create(
        name=unique("helper"),
        model="standin-model",
        instructions="You help.",
        tools=["human.request"],
        space_id=space,
    )


def rpc(client, agent_id: str, method: str, params: dict | None = None, call_id: object = 1) -> dict:
    """One JSON-RPC call through the 0.3 client as it is (it sends no A2A-Version); the answer as the wire has it."""
    answer = client.agents.a2a.rpc(agent_id, id=call_id, jsonrpc="2.0", method=method, params=params)
    body = answer.dict(by_alias=True, exclude_none=True) if hasattr(answer, "dict") else answer
    assert body["jsonrpc"] == "2.0" and body.get("id") == call_id, body
    return body


def result_of(body: dict) -> dict:
    assert "error" not in body, body
    return body["result"]


def message(text: str | None = None, *, data=None, **more) -> dict:
    part = {"text": text} if data is None else {"data": data}
    return {"message": {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [part], **more}}


def test_card(client, agent):
    card = client.agents.a2a.card(agent.id)
    assert card.name == agent.name and card.version == "1"
    (interface,) = card.supported_interfaces
    assert interface.url.endswith(f"/v1/agents/{agent.id}/a2a") and interface.protocol_version == "1.0"
    assert interface.protocol_binding == "JSONRPC"
    assert card.capabilities.streaming is False and card.capabilities.push_notifications is False
    assert card.skills[0].name == agent.name
    with pytest.raises(NotFoundError) as missing:
        client.agents.a2a.card(str(uuid.uuid4()))
    assert code_of(missing) == "agent.not_found"
    with pytest.raises(NotFoundError):
        client.agents.a2a.rpc(str(uuid.uuid4()), id=1, jsonrpc="2.0", method="GetTask", params={"id": "x"})


def test_send_message_blocks_until_done_and_get_task_shows_the_result(client, agent, llm):
    llm.then({"tool": "done", "args": {"result": "The lamp costs 12 EUR"}})
    task = result_of(rpc(client, agent.id, "SendMessage", message("What does the lamp cost?")))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    assert task["artifacts"][0]["parts"] == [{"text": "The lamp costs 12 EUR"}]
    got = result_of(rpc(client, agent.id, "GetTask", {"id": task["id"]}, call_id="get-1"))
    assert got["status"]["state"] == "TASK_STATE_COMPLETED" and got["contextId"] == task["contextId"]
    assert got["artifacts"] == task["artifacts"]
    assert got["history"][0]["parts"] == [{"text": "What does the lamp cost?"}]
    # The same task through /v1/tasks.
    same = client.tasks.get(task["id"])
    assert same.status == "succeeded" and same.output == "The lamp costs 12 EUR" and same.agent_id == agent.id
    assert same.conversation_id == task["contextId"]


def test_an_idempotency_key_makes_one_task(client, agent, llm):
    key = unique("send")
    bad = {**message("x"), "configuration": {"returnImmediately": "yes"}}
    refused = client.agents.a2a.rpc(
        agent.id, id=1, jsonrpc="2.0", method="SendMessage", params=bad, idempotency_key=key, request_options=A2A
    )
    assert refused.error is not None and refused.error.code == -32602  # a refusal keeps nothing

    llm.then({"tool": "done", "args": {"result": "once"}}, {"tool": "done", "args": {"result": "twice"}})
    params = message("Only once")

    def send(call_id, body=params):
        return client.agents.a2a.rpc(
            agent.id,
            id=call_id,
            jsonrpc="2.0",
            method="SendMessage",
            params=body,
            idempotency_key=key,
            request_options=A2A,
        )

    first, retry = send(1), send(2)
    assert retry.id == 2 and retry.result["task"]["id"] == first.result["task"]["id"]
    assert retry.result["task"]["artifacts"][0]["parts"] == [{"text": "once"}]
    with pytest.raises(ApiError) as reused:
        send(3, message("Something else"))
    assert reused.value.status_code == 409 and reused.value.body["error"]["code"] == "idempotency.mismatch"


def test_a_task_asks_and_the_next_message_answers(client, agent, llm):
    llm.then(
        {"tool": "human_request", "args": {"prompt": "Which size?", "schema": SIZE}},
        {"tool": "human_request", "args": {"prompt": "Which colour?", "schema": {"type": "string"}}},
        {"tool": "done", "args": {"result": "Ordered size M in blue"}},
    )
    asked = result_of(rpc(client, agent.id, "SendMessage", message("Order a shirt")))["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", asked
    question = asked["status"]["message"]
    assert question["role"] == "ROLE_AGENT" and question["parts"][0] == {"text": "Which size?"}
    # An answer that does not match the request's schema: invalid params, the task still asks.
    wrong = rpc(client, agent.id, "SendMessage", message(data={"size": "XL"}, taskId=asked["id"]))
    assert wrong["error"]["code"] == -32602 and wrong["error"]["data"][0]["reason"] == "tool_call.response_invalid"
    answered = result_of(rpc(client, agent.id, "SendMessage", message(data={"size": "M"}, taskId=asked["id"])))
    # The answer comes back with the next question, not the one it answered.
    task = answered["task"]
    assert task["id"] == asked["id"] and task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", task
    assert task["status"]["message"]["parts"][0] == {"text": "Which colour?"}
    task = result_of(rpc(client, agent.id, "SendMessage", message("blue", taskId=asked["id"])))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
    assert task["artifacts"][0]["parts"] == [{"text": "Ordered size M in blue"}]
    # A finished task takes no more messages.
    late = rpc(client, agent.id, "SendMessage", message("one more", taskId=asked["id"]))
    assert late["error"]["code"] == -32004


def test_return_immediately_then_cancel(client, agent, llm):
    llm.then({"tool": "human_request", "args": {"prompt": "Anything else?", "schema": {}}, "delay": 3})
    params = {**message("Wait for me"), "configuration": {"returnImmediately": True}}
    task = result_of(rpc(client, agent.id, "SendMessage", params))["task"]
    assert task["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"), task
    canceled = result_of(rpc(client, agent.id, "CancelTask", {"id": task["id"]}))
    assert canceled["id"] == task["id"]
    poll(
        lambda: (
            result_of(rpc(client, agent.id, "GetTask", {"id": task["id"]}))["status"]["state"] == "TASK_STATE_CANCELED"
        ),
        timeout=30,
    )
    assert client.tasks.get(task["id"]).status == "canceled"
    again = rpc(client, agent.id, "CancelTask", {"id": task["id"]})
    assert again["error"]["code"] == -32002


def test_list_tasks_and_errors(client, agent, llm):
    llm.then({"tool": "done", "args": {"result": "one"}}, {"tool": "done", "args": {"result": "two"}})
    first = result_of(rpc(client, agent.id, "SendMessage", message("first")))["task"]
    second = result_of(rpc(client, agent.id, "SendMessage", message("second", contextId=first["contextId"])))["task"]
    assert second["contextId"] == first["contextId"]
    listed = result_of(rpc(client, agent.id, "ListTasks", {"contextId": first["contextId"]}))
    assert [t["id"] for t in listed["tasks"]] == [second["id"], first["id"]]
    assert listed["totalSize"] == 2 and listed["nextPageToken"] == ""
    done = result_of(rpc(client, agent.id, "ListTasks", {"status": "TASK_STATE_COMPLETED", "pageSize": 1}))
    assert len(done["tasks"]) == 1 and done["nextPageToken"] and done["totalSize"] >= 2

    assert rpc(client, agent.id, "tasks/get", {"id": first["id"]})["error"]["code"] == -32601
    assert rpc(client, agent.id, "GetTask", {})["error"]["code"] == -32602
    assert rpc(client, agent.id, "GetTask", {"id": str(uuid.uuid4())})["error"]["code"] == -32001
    old = client.agents.a2a.rpc(
        agent.id,
        id=9,
        jsonrpc="2.0",
        method="ListTasks",
        params={},
        request_options={"additional_headers": {"A2A-Version": "0.3"}},
    )
    assert old.error is not None and old.error.code == -32009


@pytest.fixture
def browser(client, browsers, space):
    """A running browser in the agent's space (a task drives browsers of its own space)."""
    made = client.browsers.create(name=unique("a2a"), space_id=space, wait=30)
    browsers(made.id)
    assert made.status == "running", made
    return made


def test_a_person_answers_the_agent_in_a_view(client, agent, llm, browser, tmp_path):
    llm.then(
        {"tool": "human_request", "args": {"prompt": "Which size should I order?", "schema": SIZE}},
        {"tool": "done", "args": {"result": "Ordered size L"}},
    )
    params = message("Order a shirt in the size the person says", metadata={"browserId": browser.id})
    asked = result_of(rpc(client, agent.id, "SendMessage", params))["task"]
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED", asked
    # The waiting task holds the browser: another task on it is refused and nothing is made.
    before = result_of(rpc(client, agent.id, "ListTasks", {}))["totalSize"]
    held = rpc(client, agent.id, "SendMessage", message("Me too", metadata={"browserId": browser.id}))
    assert held["error"]["code"] == -32000 and held["error"]["data"][0]["reason"] == "browser.control_held", held
    assert result_of(rpc(client, agent.id, "ListTasks", {}))["totalSize"] == before
    view = client.views.create(scope=ViewScopeRuntimeInput(runtime_id=browser.id), control=True)
    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            page.goto(view.url)
            page.wait_for_selector("#ir:not([hidden]) .ir-req", timeout=30_000)
            assert page.inner_text(".ir-prompt") == "Which size should I order?"
            # The agent holds the browser: the page says so and offers no take-over it would refuse.
            page.wait_for_function("() => document.getElementById('status').textContent.includes('an agent')")
            assert page.is_hidden("#takeover")
            page.select_option("#ir select[name=size]", label="L")
            page.screenshot(path=SCREENSHOT or str(tmp_path / "view.png"))
            page.click("#ir button[type=submit]")
            page.wait_for_function("() => window.__inputRequests.answered === 1", timeout=30_000)
            assert page.is_hidden("#ir")
        finally:
            chromium.close()
    poll(
        lambda: (
            result_of(rpc(client, agent.id, "GetTask", {"id": asked["id"]}))["status"]["state"]
            == "TASK_STATE_COMPLETED"
        ),
        timeout=30,
    )
    done = result_of(rpc(client, agent.id, "GetTask", {"id": asked["id"]}))
    assert done["artifacts"][0]["parts"] == [{"text": "Ordered size L"}]
    assert done["metadata"]["browserId"] == browser.id

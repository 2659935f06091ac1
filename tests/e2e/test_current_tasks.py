"""Tasks and conversations through the official 0.3 client, unchanged, against real server processes,
Chromium and the stand-in LLM: a task to `done` with its output checked, a person answering
`human.request` through `tasks.input`, a conversation continued and deleted, cancel, the controller
lock both ways on a running browser (a CDP client holds it: the task is refused; a task holds it: the
pages API is refused), and a server killed mid-work: its running tasks end failed, its queued task
runs on the next process."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from bctrl import Bctrl
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

from app.invocations.worker import MAX_CONCURRENT
from tests.ai import conftest as ai_tier
from tests.e2e.conftest import create_db, drop_db, start_server, stop_server
from tests.e2e.test_current_sdk import code_of

llm, fresh_script = ai_tier.llm, ai_tier.fresh_script

SCHEMA = {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}


def chats(llm) -> list[dict]:
    return [r["body"] for r in llm.requests if r["path"].endswith("/chat/completions")]


def setup_agent(client: Bctrl, llm, name: str, tools: list[str]) -> None:
    if not client.ai.credentials.list().data:
        client.ai.credentials.create(
            provider="custom", base_url=f"{llm.base}/v1", api_key="sk-test", default_model="standin-model"
        )
    client.agents.create(name=name, model="standin-model", instructions="Be brief.", tools=tools)


def until(check, seconds: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(every)


def settled(client: Bctrl, task_id: str):
    for _ in range(3):
        task = client.tasks.get(task_id, wait=20)
        if task.status not in ("queued", "running"):
            return task
    raise AssertionError(f"task {task_id} did not settle: {task}")


@pytest.fixture(scope="module")
def agents(sdk, llm):
    names = {kind: f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("plain", "asker", "pager")}
    setup_agent(sdk, llm, names["plain"], [])
    setup_agent(sdk, llm, names["asker"], ["human.request"])
    setup_agent(sdk, llm, names["pager"], ["browser.pages.list"])
    return names


def test_a_task_to_done_a_continued_conversation_and_bad_input(sdk, llm, agents):
    llm.then({"tool": "done", "args": {"price": "?"}}, {"tool": "done", "args": {"price": 12.5}})
    task = sdk.tasks.create(agent=agents["plain"], input="What does the lamp cost?", output_schema=SCHEMA)
    assert task.status == "queued" and task.object == "task" and task.runs == []
    done = settled(sdk, task.id)
    assert (done.status, done.output, done.error_code) == ("succeeded", {"price": 12.5}, None), done
    assert done.usage.input_tokens == 200 and done.trace_id

    llm.then({"tool": "done", "args": {"price": 30}})
    second = sdk.tasks.create(
        agent=agents["plain"], input="And the chair?", conversation=done.conversation_id, output_schema=SCHEMA
    )
    assert settled(sdk, second.id).output == {"price": 30}
    assert "What does the lamp cost?" in str(chats(llm)[-1]["messages"])
    listed = sdk.tasks.list(conversation=done.conversation_id, order="asc")
    assert [t.id for t in listed.data] == [task.id, second.id]
    assert [t.id for t in sdk.tasks.list(agent=agents["plain"], status="succeeded").data][:2] == [second.id, task.id]

    conversation = sdk.conversations.update(done.conversation_id, title="Prices")
    assert (conversation.title, conversation.status) == ("Prices", "idle")
    assert done.conversation_id in [c.id for c in sdk.conversations.list().data]
    assert sdk.conversations.delete(done.conversation_id).deleted is True
    with pytest.raises(NotFoundError) as gone:
        sdk.conversations.get(done.conversation_id)
    assert code_of(gone) == "conversation.not_found"

    with pytest.raises(BadRequestError) as bad:
        sdk.tasks.create(agent=agents["plain"], input="x", output_schema={"type": 12})
    assert code_of(bad) == "request.invalid"
    with pytest.raises(NotFoundError) as unknown:
        sdk.tasks.create(agent="no-such-agent", input="x")
    assert code_of(unknown) == "agent.not_found"
    with pytest.raises(NotFoundError) as version:
        sdk.tasks.create(agent=agents["plain"], input="x", version=9)
    assert code_of(version) == "agent.version_not_found"
    with pytest.raises(NotFoundError) as missing:
        sdk.tasks.get(str(uuid.uuid4()))
    assert code_of(missing) == "task.not_found"


def test_a_person_answers_through_tasks_input_and_cancel(sdk, llm, agents):
    schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    llm.then(
        {"tool": "human_request", "args": {"prompt": "Which color?", "schema": schema}},
        {"tool": "done", "args": {"result": "ordered red"}},
    )
    task = sdk.tasks.create(agent=agents["asker"], input="order a lamp")
    waiting = settled(sdk, task.id)
    assert waiting.status == "awaiting_input" and waiting.input_request.summary == "Which color?", waiting
    with pytest.raises(ConflictError) as mismatch:
        sdk.tasks.input(task.id, input={"color": "red"}, request_id=str(uuid.uuid4()))
    assert code_of(mismatch) == "task.input_request_mismatch"
    answered = sdk.tasks.input(task.id, input={"color": "red"}, request_id=waiting.input_request.id)
    assert answered.input_request is None
    assert (settled(sdk, task.id).status, settled(sdk, task.id).output) == ("succeeded", "ordered red")

    llm.then({"tool": "human_request", "args": {"prompt": "Which size?"}})
    slow = sdk.tasks.create(agent=agents["asker"], input="order a chair")
    assert settled(sdk, slow.id).status == "awaiting_input"
    sdk.tasks.cancel(slow.id)
    canceled = settled(sdk, slow.id)
    assert (canceled.status, canceled.error_code) == ("canceled", "task.canceled")
    with pytest.raises(ConflictError) as finished:
        sdk.tasks.cancel(task.id)
    assert code_of(finished) == "task.not_running"


def test_the_controller_lock_both_ways(sdk, llm, agents, running):
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(running.current_run.connections.cdp_url)
        try:
            with pytest.raises(ConflictError) as held:
                sdk.tasks.create(agent=agents["pager"], input="x", metadata={"browserId": running.id})
            assert code_of(held) == "browser.control_held"
        finally:
            cdp.close()
    llm.then({"tool": "browser_pages_list", "args": {}, "delay": 2}, {"tool": "done", "args": {"result": "1"}})

    def created():
        try:
            return sdk.tasks.create(agent=agents["pager"], input="count pages", metadata={"browserId": running.id})
        except ConflictError:
            return None  # the CDP client's hold lapses shortly after it left

    task = until(created)
    assert task.runs == [running.current_run.id]
    with pytest.raises(ConflictError) as busy:
        sdk.browsers.pages.list(running.id)
    assert code_of(busy) == "browser.control_held"
    done = settled(sdk, task.id)
    assert done.status == "succeeded", done
    assert until(lambda: sdk.browsers.pages.list(running.id)).status == "succeeded"


def test_a_killed_server_fails_its_running_tasks_and_the_next_runs_the_queued_one(tmp_path, llm):
    database, key, prefix = create_db(), f"bctrl_e2e_{uuid.uuid4().hex}", f"bctrl-test-{uuid.uuid4().hex[:8]}"
    env = {"BCTRL_INVOCATION_DEAD_AFTER_SECONDS": "3"}
    servers = []
    try:
        first = start_server(tmp_path / "first", database, key, prefix, **env)
        servers.append(first)
        client = Bctrl(token=key, base_url=first.url)
        setup_agent(client, llm, "slow", [])
        llm.then(*[{"text": "thinking", "delay": 30}] * MAX_CONCURRENT)
        tasks = [client.tasks.create(agent="slow", input=f"job {i}") for i in range(MAX_CONCURRENT + 1)]
        until(lambda: len(chats(llm)) == MAX_CONCURRENT)
        statuses = [client.tasks.get(t.id).status for t in tasks]
        assert sorted(statuses) == ["queued"] + ["running"] * MAX_CONCURRENT, statuses
        queued = tasks[statuses.index("queued")]
        stop_server(first, signal.SIGKILL)

        llm.then({"tool": "done", "args": {"result": "ran after the restart"}})
        second = start_server(tmp_path / "second", database, key, prefix, **env)
        servers.append(second)
        client = Bctrl(token=key, base_url=second.url)
        after = settled(client, queued.id)
        assert (after.status, after.output) == ("succeeded", "ran after the restart"), after
        for task in tasks:
            if task.id != queued.id:
                ended = until(lambda t=task: (got := client.tasks.get(t.id)).status == "failed" and got)
                assert ended.error_code == "task.failed" and "stopped" in ended.error_message
                assert client.conversations.get(ended.conversation_id).status == "idle"
    finally:
        for server in servers:
            stop_server(server)
        drop_db(database)

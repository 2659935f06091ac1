"""Tasks and conversations in process, over both backends, with the stand-in LLM: an agent without
browser tools runs to `done` with its output checked against outputSchema (one retry, then
`task.output_invalid`), the step limit, conversations carrying the transcript to the next task and
refusing a second task while busy, cancel, steering a running task, and every bad input's documented
code with nothing made."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from app.core import clock
from app.invocations.worker import MAX_CONCURRENT
from app.runs.command_models import Command
from app.runtimes.models import Runtime
from app.tasks.models import Conversation
from tests.ai import conftest as ai_tier
from tests.support import error_of, eventually

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}
SCHEMA = {
    "type": "object",
    "properties": {"price": {"type": "number"}},
    "required": ["price"],
    "additionalProperties": False,
}


def chats(llm) -> list[dict]:
    """The model turns the server asked for (the credential's model listing aside)."""
    return [r["body"] for r in llm.requests if r["path"].endswith("/chat/completions")]


async def _equal(got, wanted) -> bool:
    return await got == wanted


@pytest.fixture
async def credential(api, llm):
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    return made.json()


@pytest.fixture
async def agent(api, credential):
    made = await api.post(
        "/v1/agents",
        json={"name": "pricer", "model": "standin-model", "instructions": "You find prices.", "tools": []},
        headers=V,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def create(api, **body) -> dict:
    response = await api.post("/v1/tasks", json=body, headers=V)
    assert response.status_code == 202, response.text
    return response.json()


async def finished(api, task_id: str, wait: int = 30) -> dict:
    for _ in range(4):
        got = await api.get(f"/v1/tasks/{task_id}", params={"wait": wait}, headers=V)
        assert got.status_code == 200, got.text
        if got.json()["status"] not in ("queued", "running"):
            return got.json()
    raise AssertionError(f"task {task_id} did not finish: {got.text}")


async def counts(server) -> tuple[int, int]:
    async with server.ctx.db.read() as s:
        tasks = (await s.execute(select(func.count()).select_from(Command).where(Command.provider == "agent"))).scalar()
        convs = (await s.execute(select(func.count()).select_from(Conversation))).scalar()
    return tasks, convs


async def test_a_task_runs_to_done_and_its_output_is_checked_once_more(api, llm, agent):
    llm.then(
        {"tool": "done", "args": {"price": "cheap"}},  # does not match the schema: told so, asked again
        {"tool": "done", "args": {"price": 12.5}},
    )
    task = await create(api, agent="pricer", input="What does the lamp cost?", outputSchema=SCHEMA)
    assert task["object"] == "task" and task["status"] == "queued" and task["agentId"] == agent["id"]
    assert (task["version"], task["versionId"]) == (1, agent["version"]["id"])
    assert task["input"] == "What does the lamp cost?" and task["runs"] == [] and task["outputSchema"] == SCHEMA
    done = await finished(api, task["id"])
    assert done["status"] == "succeeded", done
    assert done["output"] == {"price": 12.5} and done["errorCode"] is None
    assert done["usage"] == {"inputTokens": 200, "outputTokens": 40}
    assert done["startedAt"] and done["finishedAt"] and done["traceId"]
    first, second = chats(llm)
    assert first["messages"][0] == {"role": "system", "content": first["messages"][0]["content"]}
    assert first["messages"][0]["content"].startswith("You find prices.")
    assert [t["function"]["name"] for t in first["tools"]] == ["done"]
    assert first["tools"][0]["function"]["parameters"] == SCHEMA
    assert "does not match the output schema" in str(second["messages"][-1])
    conv = (await api.get(f"/v1/conversations/{done['conversationId']}", headers=V)).json()
    assert conv["status"] == "idle" and conv["activeTaskId"] is None and conv["spaceId"] == done["spaceId"]

    async def task_events():
        found = (await api.get("/v1/events", params={"task": task["id"], "order": "asc"}, headers=V)).json()
        return [e["type"] for e in found["data"]]

    wanted = [
        "task.created",
        "task.started",
        "task.llm_call",
        "task.step",
        "task.llm_call",
        "task.step",
        "task.succeeded",
    ]
    await eventually(lambda: _equal(task_events(), wanted))
    by_conversation = (await api.get("/v1/events", params={"conversation": conv["id"]}, headers=V)).json()["data"]
    by_agent = (await api.get("/v1/events", params={"agent": agent["id"]}, headers=V)).json()["data"]
    assert len(by_conversation) == len(by_agent) == len(wanted)
    listed = (await api.get("/v1/tasks", params={"agent": "pricer", "status": "succeeded"}, headers=V)).json()
    assert [t["id"] for t in listed["data"]] == [task["id"]]
    assert (await api.get("/v1/tasks", params={"status": "failed"}, headers=V)).json()["data"] == []
    assert (await api.get("/v1/tasks", params={"agent": "nobody"}, headers=V)).json()["data"] == []


async def test_an_output_that_never_matches_fails_the_task(api, llm, agent):
    llm.then({"tool": "done", "args": {"price": "a"}}, {"tool": "done", "args": {"price": "b"}})
    task = await create(api, agent=agent["id"], input="price?", outputSchema=SCHEMA)
    done = await finished(api, task["id"])
    assert (done["status"], done["errorCode"]) == ("failed", "task.output_invalid"), done
    assert done["output"] is None and done["usage"]["inputTokens"] == 200  # both turns counted


async def test_a_model_that_never_finishes_meets_the_step_limit(api, llm, agent):
    llm.then(*[{"text": "thinking"}] * 30)
    task = await create(api, agent="pricer", input="loop")
    done = await finished(api, task["id"])
    assert (done["status"], done["errorCode"]) == ("failed", "task.step_limit"), done
    assert len(chats(llm)) == 30


async def test_a_conversation_carries_the_transcript_and_runs_one_task_at_a_time(api, llm, agent):
    llm.then({"tool": "done", "args": {"result": "The lamp costs 12 euros"}, "delay": 1.5})
    first = await create(api, agent="pricer", input="What does the lamp cost?")
    conv_id = first["conversationId"]
    busy = await api.post(
        "/v1/tasks", json={"agent": "pricer", "input": "and the chair?", "conversation": conv_id}, headers=V
    )
    assert error_of(busy, 409)["code"] == "conversation.busy"
    refused = await api.delete(f"/v1/conversations/{conv_id}", headers=V)
    assert error_of(refused, 409)["code"] == "conversation.busy"
    conv = (await api.get(f"/v1/conversations/{conv_id}", headers=V)).json()
    assert conv["status"] == "active" and conv["activeTaskId"] == first["id"]
    assert (await finished(api, first["id"]))["output"] == "The lamp costs 12 euros"

    llm.then({"tool": "done", "args": {"result": "The chair costs 30 euros"}})
    second = await create(api, agent="pricer", input="And the chair?", conversation=conv_id)
    assert second["conversationId"] == conv_id
    assert (await finished(api, second["id"]))["status"] == "succeeded"
    sent = str(chats(llm)[-1]["messages"])
    assert "What does the lamp cost?" in sent and "The lamp costs 12 euros" in sent and "And the chair?" in sent

    listed = (await api.get("/v1/tasks", params={"conversation": conv_id, "order": "asc"}, headers=V)).json()
    assert [t["id"] for t in listed["data"]] == [first["id"], second["id"]]
    updated = await api.patch(f"/v1/conversations/{conv_id}", json={"title": "Prices", "metadata": {"k": 1}}, headers=V)
    assert updated.status_code == 200 and (updated.json()["title"], updated.json()["metadata"]) == ("Prices", {"k": 1})
    convs = (await api.get("/v1/conversations", params={"agent": agent["id"]}, headers=V)).json()["data"]
    assert [c["id"] for c in convs] == [conv_id]
    deleted = await api.delete(f"/v1/conversations/{conv_id}", headers=V)
    assert deleted.status_code == 200 and deleted.json() == {"id": conv_id, "deleted": True}
    assert error_of(await api.get(f"/v1/conversations/{conv_id}", headers=V), 404)["code"] == "conversation.not_found"
    assert (await api.get(f"/v1/tasks/{first['id']}", headers=V)).status_code == 200  # tasks stay readable


async def test_cancel_stops_a_running_task_and_frees_its_conversation(api, llm, agent):
    llm.then({"text": "hm", "delay": 1.0}, *[{"text": "still thinking"}] * 29)
    task = await create(api, agent="pricer", input="slow")

    async def running():
        return (await api.get(f"/v1/tasks/{task['id']}", headers=V)).json()["status"] == "running"

    await eventually(running)
    canceled = await api.post(f"/v1/tasks/{task['id']}/cancel", headers=V)
    assert canceled.status_code == 200 and canceled.json()["status"] in ("running", "canceled")
    done = await finished(api, task["id"])
    assert done["status"] == "canceled", done
    assert len(chats(llm)) <= 2  # it stopped before the next step
    conv = (await api.get(f"/v1/conversations/{done['conversationId']}", headers=V)).json()
    assert conv["status"] == "idle"
    again = await api.post(f"/v1/tasks/{task['id']}/cancel", headers=V)
    assert again.status_code == 200 and again.json()["status"] == "canceled"


async def test_a_person_steers_a_running_task(api, llm, agent):
    llm.then({"text": "looking", "delay": 1.0}, {"tool": "done", "args": {"result": "blue one"}})
    task = await create(api, agent="pricer", input="find a lamp")

    async def running():
        return (await api.get(f"/v1/tasks/{task['id']}", headers=V)).json()["status"] == "running"

    await eventually(running)
    steered = await api.post(f"/v1/tasks/{task['id']}/input", json={"input": "only blue lamps"}, headers=V)
    assert steered.status_code == 200, steered.text
    done = await finished(api, task["id"])
    assert done["status"] == "succeeded"
    assert "Message from the user: only blue lamps" in str(chats(llm)[1]["messages"])
    late = await api.post(f"/v1/tasks/{task['id']}/input", json={"input": "more"}, headers=V)
    assert error_of(late, 409)["code"] == "task.not_running"
    answer = await api.post(f"/v1/tasks/{task['id']}/input", json={"input": "x", "requestId": "nope"}, headers=V)
    assert error_of(answer, 409)["code"] == "task.input_not_requested"
    cancel = await api.post(f"/v1/tasks/{task['id']}/cancel", headers=V)
    assert error_of(cancel, 409)["code"] == "task.not_running"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"agent": "pricer", "input": "x", "outputSchema": {"type": "nonsense"}}, 400, "request.invalid"),
        ({"agent": "nobody", "input": "x"}, 404, "agent.not_found"),
        ({"agent": "pricer", "input": "x", "version": 7}, 404, "agent.version_not_found"),
        ({"agent": "pricer", "input": "x", "conversation": str(uuid.UUID(int=5))}, 404, "conversation.not_found"),
        ({"agent": "pricer", "input": "x", "metadata": {"browserId": "no-such-browser"}}, 404, "browser.not_found"),
        ({"agent": "pricer", "input": "x", "spaceId": str(uuid.UUID(int=9))}, 404, "space.not_found"),
        ({"agent": "pricer", "input": ""}, 400, "request.invalid"),
        ({"agent": "pricer", "input": [{"type": "image", "url": "x"}]}, 400, "request.invalid"),
        ({"agent": "pricer"}, 400, "request.invalid"),
    ],
)
async def test_bad_tasks_are_refused_and_nothing_is_made(server, api, agent, body, status, code):
    before = await counts(server)
    assert error_of(await api.post("/v1/tasks", json=body, headers=V), status)["code"] == code
    assert await counts(server) == before


async def test_unknown_tasks_and_conversations_are_404(api):
    for path in (f"/v1/tasks/{uuid.uuid4()}", "/v1/tasks/not-an-id", f"/v1/conversations/{uuid.uuid4()}"):
        code = error_of(await api.get(path, headers=V), 404)["code"]
        assert code in ("task.not_found", "conversation.not_found")


@pytest.fixture
async def asker(api, credential):
    made = await api.post(
        "/v1/agents", json={"name": "asker", "model": "standin-model", "tools": ["human.request"]}, headers=V
    )
    assert made.status_code == 201, made.text
    return made.json()


COLOR = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}


async def test_a_task_asks_a_person_and_continues_with_the_answer(api, llm, asker):
    llm.then(
        {"tool": "human_request", "args": {"prompt": "Which color?", "schema": COLOR}},
        {"tool": "done", "args": {"result": "ordered the red one"}},
    )
    task = await create(api, agent="asker", input="order a lamp")
    waiting = await finished(api, task["id"])
    assert waiting["status"] == "awaiting_input", waiting
    request = waiting["inputRequest"]
    assert request["summary"] == "Which color?" and request["schema"] == COLOR and request["expiresAt"]
    assert request["kind"] == "question" and request["id"]
    assert request["viewUrl"] is None  # no browser: nothing to show a person
    path = f"/v1/tasks/{task['id']}/input"
    wrong = await api.post(path, json={"input": {"color": "red"}, "requestId": str(uuid.uuid4())}, headers=V)
    assert error_of(wrong, 409)["code"] == "task.input_request_mismatch"
    bad = await api.post(path, json={"input": {"colour": 1}, "requestId": request["id"]}, headers=V)
    assert error_of(bad, 400)["code"] == "tool_call.response_invalid"
    steer = await api.post(path, json={"input": "hurry"}, headers=V)
    assert error_of(steer, 409)["code"] == "task.input_request_mismatch"
    answered = await api.post(path, json={"input": {"color": "red"}, "requestId": request["id"]}, headers=V)
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] in ("running", "succeeded") and answered.json()["inputRequest"] is None
    done = await finished(api, task["id"])
    assert (done["status"], done["output"]) == ("succeeded", "ordered the red one"), done
    assert "red" in str(chats(llm)[1]["messages"][-1])
    again = await api.post(path, json={"input": {"color": "blue"}, "requestId": request["id"]}, headers=V)
    assert error_of(again, 409)["code"] == "task.input_not_requested"


async def test_cancel_while_a_task_waits_for_a_person(api, llm, asker):
    llm.then({"tool": "human_request", "args": {"prompt": "Which color?"}})
    task = await create(api, agent="asker", input="order a lamp")
    assert (await finished(api, task["id"]))["status"] == "awaiting_input"
    await api.post(f"/v1/tasks/{task['id']}/cancel", headers=V)
    done = await finished(api, task["id"])
    assert (done["status"], done["inputRequest"]) == ("canceled", None), done
    assert len(chats(llm)) == 1


async def test_tasks_waiting_for_people_do_not_stop_the_queue(api, llm, asker):
    """More tasks wait for answers than a process runs at once: the next task still runs."""
    waiting_count = MAX_CONCURRENT + 1
    llm.then(*[{"tool": "human_request", "args": {"prompt": f"Question {i}?"}} for i in range(waiting_count)])
    tasks = [await create(api, agent="asker", input=f"ask {i}") for i in range(waiting_count)]
    try:
        states = [(await finished(api, t["id"]))["status"] for t in tasks]
        assert states == ["awaiting_input"] * waiting_count, states
    finally:
        for t in tasks:
            await api.post(f"/v1/tasks/{t['id']}/cancel", headers=V)
    assert {(await finished(api, t["id"]))["status"] for t in tasks} == {"canceled"}


@pytest.fixture
async def browser_agent(api, credential):
    made = await api.post(
        "/v1/agents", json={"name": "pager", "model": "standin-model", "tools": ["browser.pages.list"]}, headers=V
    )
    assert made.status_code == 201, made.text
    return made.json()


@pytest.fixture
async def browsers(api):
    """`browsers()`: a running browser, deleted (stopped) in teardown."""
    made: list[str] = []

    async def start() -> dict:
        created = await api.post("/v1/browsers", params={"wait": 30}, json={}, headers=V)
        assert created.status_code == 201, created.text
        made.append(created.json()["id"])
        return created.json()

    yield start
    for browser_id in made:
        await api.delete(f"/v1/browsers/{browser_id}", headers=V)


async def holder(server, browser_id: str) -> str | None:
    """Who holds the browser's controller lock, by our kind (`invocation` is a task or an invocation;
    the wire says `agent` for it and for a CDP connection alike)."""
    async with server.ctx.db.read() as s:
        runtime = await s.get(Runtime, uuid.UUID(browser_id))
    live = runtime.controller_expires_at is not None and runtime.controller_expires_at > clock.now()
    return f"{runtime.controller_kind}:{runtime.controller_id}" if live and runtime.controller_kind else None


async def test_a_task_drives_a_given_browser_under_its_controller_lock(server, api, llm, browser_agent, browsers):
    browser = await browsers()
    run_id = browser["currentRun"]["id"]
    llm.then(
        {"tool": "browser_pages_list", "args": {}, "delay": 1.5},
        {"tool": "done", "args": {"result": "one page"}},
    )
    task = await create(api, agent="pager", input="count the pages", metadata={"browserId": browser["id"]})
    assert task["runs"] == [run_id] and task["metadata"] == {"browserId": browser["id"]}
    assert await holder(server, browser["id"]) == f"invocation:{uuid.UUID(task['id']).hex}"
    before = await counts(server)
    taken = await api.post(
        "/v1/tasks", json={"agent": "pager", "input": "x", "metadata": {"browserId": browser["id"]}}, headers=V
    )
    assert error_of(taken, 409)["code"] == "browser.control_held"
    assert await counts(server) == before
    done = await finished(api, task["id"])
    assert (done["status"], done["runs"]) == ("succeeded", [run_id]), done
    assert "about:blank" in str(chats(llm)[1]["messages"][-1]) or "pages" in str(chats(llm)[1]["messages"][-1])
    assert not (await holder(server, browser["id"]) or "").startswith("invocation:")
    # The browser was the user's: it keeps running after the task.
    assert (await api.get(f"/v1/browsers/{browser['id']}", headers=V)).json()["status"] == "running"


async def test_a_task_on_a_browser_asks_through_a_view_that_lasts_as_long_as_the_request(
    server, api, llm, credential, browsers
):
    """A task driving a browser asks a person: its inputRequest.viewUrl opens a view of the task's run with
    control, whose page lists the request and takes the answer; once answered, that link is dead."""
    made = await api.post(
        "/v1/agents",
        json={"name": "handoff", "model": "standin-model", "tools": ["browser.pages.list", "human.request"]},
        headers=V,
    )
    assert made.status_code == 201, made.text
    browser = await browsers()
    run_id = browser["currentRun"]["id"]
    llm.then(
        {"tool": "human_request", "args": {"prompt": "Which color?", "schema": COLOR}},
        {"tool": "done", "args": {"result": "ordered the red one"}},
    )
    task = await create(api, agent="handoff", input="order a lamp", metadata={"browserId": browser["id"]})
    waiting = await finished(api, task["id"])
    assert waiting["status"] == "awaiting_input", waiting
    request = waiting["inputRequest"]
    assert request["kind"] == "handoff" and request["viewUrl"], request
    url = urlsplit(request["viewUrl"])
    assert f"{url.scheme}://{url.netloc}" == server.settings.resolved_public_url and url.path == "/view"
    page = await api.get(f"{url.path}?{url.query}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    as_view = {"Authorization": f"Bearer {parse_qs(url.query)['token'][0]}"}
    listed = await api.get("/view/input-requests", params={"runId": run_id}, headers=as_view)
    assert listed.status_code == 200, listed.text
    assert [(r["id"], r["taskId"], r["prompt"]) for r in listed.json()["items"]] == [
        (request["id"], task["id"], "Which color?")
    ]
    answered = await api.post(
        f"/view/input-requests/{request['id']}", json={"runId": run_id, "value": {"color": "red"}}, headers=as_view
    )
    assert answered.status_code == 200, answered.text

    async def answered_there() -> bool:  # the runner takes the answer at its next look
        return (await api.get(f"/v1/tasks/{task['id']}", headers=V)).json()["status"] != "awaiting_input"

    await eventually(answered_there)
    done = await finished(api, task["id"])
    assert (done["status"], done["output"]) == ("succeeded", "ordered the red one"), done
    assert "red" in str(chats(llm)[1]["messages"][-1])
    assert (await api.get("/view/state", headers=as_view)).status_code == 401  # revoked with the request


async def test_a_task_with_browser_tools_launches_a_browser_and_stops_it(api, llm, browser_agent):
    llm.then({"tool": "browser_pages_list", "args": {}}, {"tool": "done", "args": {"result": "listed"}})
    task = await create(api, agent="pager", input="count the pages")
    assert task["runs"] == []
    done = await finished(api, task["id"], wait=60)
    assert done["status"] == "succeeded", done
    assert len(done["runs"]) == 1
    tool_result = str(chats(llm)[1]["messages"][-1])
    assert "failed" not in tool_result, tool_result

    async def ended():
        run = (await api.get(f"/v1/runs/{done['runs'][0]}", headers=V)).json()
        return run["status"] in ("ended", "failed")

    await eventually(ended, timeout=30)


async def test_a_task_on_a_stopped_browser_is_refused(server, api, llm, browser_agent, browsers):
    browser = await browsers()
    stopped = await api.post(f"/v1/browsers/{browser['id']}/stop", params={"wait": 30}, json={}, headers=V)
    assert stopped.status_code == 200, stopped.text
    before = await counts(server)
    refused = await api.post(
        "/v1/tasks", json={"agent": "pager", "input": "x", "metadata": {"browserId": browser["id"]}}, headers=V
    )
    assert error_of(refused, 409)["code"] == "browser.not_running"
    assert await counts(server) == before


async def test_a_task_outside_its_agents_scope_is_refused(server, api, credential):
    other = await api.post("/v1/spaces", json={"name": f"elsewhere-{uuid.uuid4().hex[:6]}"}, headers=V)
    assert other.status_code == 201, other.text
    made = await api.post(
        "/v1/agents",
        json={"name": "scoped", "model": "standin-model", "tools": [], "scope": {"spaces": [other.json()["id"]]}},
        headers=V,
    )
    assert made.status_code == 201, made.text
    before = await counts(server)
    refused = await api.post("/v1/tasks", json={"agent": "scoped", "input": "x"}, headers=V)
    assert error_of(refused, 403)["code"] == "task.scope_denied"
    assert await counts(server) == before

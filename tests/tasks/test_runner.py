"""The task runner on servers of their own (SQLite, one data directory for two processes in turn):
the timeout and the step limit from the settings, and a restart: a task running when the server shuts
down ends failed (never `running` for ever), a task still queued runs on the next server."""

from __future__ import annotations

import asyncio

import pytest

from tests.ai import conftest as ai_tier
from tests.conftest import make_settings, running_app
from tests.support import eventually

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}


async def prepare(api, llm) -> None:
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    agent = await api.post("/v1/agents", json={"name": "a", "model": "standin-model", "tools": []}, headers=V)
    assert agent.status_code == 201, agent.text


async def create(api, text: str) -> dict:
    made = await api.post("/v1/tasks", json={"agent": "a", "input": text}, headers=V)
    assert made.status_code == 202, made.text
    return made.json()


async def status_of(api, task: dict) -> dict:
    return (await api.get(f"/v1/tasks/{task['id']}", params={"wait": 20}, headers=V)).json()


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data", "sqlite", None, task_timeout_seconds=2, task_step_limit=3)


async def test_the_timeout_and_the_step_limit_come_from_the_settings(settings, llm):
    async with running_app(settings) as server, await server.client() as api:
        await prepare(api, llm)
        llm.then({"text": "slow", "delay": 6})
        slow = await status_of(api, await create(api, "slow"))
        assert (slow["status"], slow["errorCode"]) == ("failed", "task.timed_out"), slow
        llm.reset()
        llm.then(*[{"text": "thinking"}] * 5)
        looping = await status_of(api, await create(api, "loop"))
        assert (looping["status"], looping["errorCode"]) == ("failed", "task.step_limit"), looping
        assert len([r for r in llm.requests if r["path"].endswith("/chat/completions")]) == 3
        conversation = (await api.get(f"/v1/conversations/{looping['conversationId']}", headers=V)).json()
        assert conversation["status"] == "idle"


async def test_a_restart_fails_the_running_task_and_runs_the_queued_one(tmp_path, llm):
    settings = make_settings(tmp_path / "data", "sqlite", None)
    async with running_app(settings) as first, await first.client() as api:
        headers = dict(api.headers)
        await prepare(api, llm)
        llm.then({"text": "slow", "delay": 30})
        running = await create(api, "long job")

        async def is_running():
            return (await api.get(f"/v1/tasks/{running['id']}", headers=V)).json()["status"] == "running"

        await eventually(is_running)
        await first.ctx.invocations.stop()  # this process stops working: what it ran must not stay running
        stopped = (await api.get(f"/v1/tasks/{running['id']}", headers=V)).json()
        assert (stopped["status"], stopped["errorCode"]) == ("failed", "task.failed"), stopped
        assert "shut down" in stopped["errorMessage"]
        queued = await create(api, "next job")
        assert (await api.get(f"/v1/tasks/{queued['id']}", headers=V)).json()["status"] == "queued"

    llm.reset()
    llm.then({"tool": "done", "args": {"result": "done after the restart"}})
    async with running_app(settings) as second, second.anonymous(headers=headers) as api:
        after = await status_of(api, queued)
        assert (after["status"], after["output"]) == ("succeeded", "done after the restart"), after
        conversation = (await api.get(f"/v1/conversations/{running['conversationId']}", headers=V)).json()
        assert conversation["status"] == "idle"


async def test_a_task_claimed_but_not_yet_started_at_shutdown_ends_failed(tmp_path, llm):
    """The shutdown reaches a task before its first step (its row read on a loaded host): the row it
    claimed still ends `failed`, not `running` for ever."""
    settings = make_settings(tmp_path / "data", "sqlite", None)
    async with running_app(settings) as server, await server.client() as api:
        await prepare(api, llm)
        worker = server.ctx.invocations
        worker.paused = True  # the queue is claimed below, by hand, with no step in between
        queued = await create(api, "never started")
        worker.paused = False
        await worker._claim()
        assert (await api.get(f"/v1/tasks/{queued['id']}", headers=V)).json()["status"] == "running"
        await worker.stop()
        ended = (await api.get(f"/v1/tasks/{queued['id']}", headers=V)).json()
        assert (ended["status"], ended["errorCode"]) == ("failed", "task.failed"), ended
        assert "shut down" in ended["errorMessage"]
        conversation = (await api.get(f"/v1/conversations/{queued['conversationId']}", headers=V)).json()
        assert conversation["status"] == "idle"


async def test_time_waiting_for_a_person_does_not_count_toward_the_timeout(settings, llm):
    async with running_app(settings) as server, await server.client() as api:
        await prepare(api, llm)
        made = await api.post(
            "/v1/agents", json={"name": "asker", "model": "standin-model", "tools": ["human.request"]}, headers=V
        )
        assert made.status_code == 201, made.text
        llm.then(
            {"tool": "human_request", "args": {"prompt": "Go on?"}}, {"tool": "done", "args": {"result": "went on"}}
        )
        created = await api.post("/v1/tasks", json={"agent": "asker", "input": "x"}, headers=V)
        task = created.json()
        waiting = await status_of(api, task)
        assert waiting["status"] == "awaiting_input", waiting
        await asyncio.sleep(settings.task_timeout_seconds + 1.5)  # longer than the task may run
        assert (await api.get(f"/v1/tasks/{task['id']}", headers=V)).json()["status"] == "awaiting_input"
        request_id = waiting["inputRequest"]["id"]
        answered = await api.post(
            f"/v1/tasks/{task['id']}/input", json={"input": "yes", "requestId": request_id}, headers=V
        )
        assert answered.status_code == 200, answered.text
        done = await status_of(api, task)
        assert (done["status"], done["output"]) == ("succeeded", "went on"), done

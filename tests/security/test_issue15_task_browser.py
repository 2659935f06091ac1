"""Security review of issue 15, the task runner's own browser (app/tasks/runner.py `_launch_browser`): every
failure path must leave no browser behind ("no browser orphaned")."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from app.locks import Holder
from app.runtimes import controller, lifecycle
from app.runtimes.models import Runtime
from tests.ai import conftest as ai_tier
from tests.support import eventually

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
async def make_agent(api, llm) -> None:
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    agent = await api.post(
        "/v1/agents",
        json={"name": "browsing", "model": "standin-model", "tools": ["browser.pages.list"]},
        headers=V,
    )
    assert agent.status_code == 201, agent.text


async def browsers_of(server, task_id: str) -> list[Runtime]:
    """The task's own browsers still running."""
    async with server.ctx.db.read() as s:
        rows = (await s.execute(select(Runtime).where(Runtime.active_run_id.is_not(None)))).scalars()
        return [r for r in rows if (r.metadata_ or {}).get("taskId") == task_id]


async def test_a_browser_launched_when_the_timeout_fires_is_stopped(make_server, llm, monkeypatch):
    """The timeout fires while the task's browser is still launching (a launch runs to its end even when
    its caller is cancelled): the task ends timed out and the browser it was launching does not stay."""
    real_launch = lifecycle.launch

    async def slow_launch(ctx, runtime_id, **kwargs):
        async def later():
            await asyncio.sleep(2.5)  # longer than the task may run (1 s)
            return await real_launch(ctx, runtime_id, **kwargs)

        return await asyncio.shield(asyncio.ensure_future(later()))

    async with make_server("postgres", task_timeout_seconds=1) as server, await server.client() as api:
        await make_agent(api, llm)
        monkeypatch.setattr(lifecycle, "launch", slow_launch)
        task = (await api.post("/v1/tasks", json={"agent": "browsing", "input": "list the pages"}, headers=V)).json()
        done = (await api.get(f"/v1/tasks/{task['id']}", params={"wait": 30}, headers=V)).json()
        assert (done["status"], done["errorCode"]) == ("failed", "task.timed_out"), done
        monkeypatch.undo()

        async def none_running() -> bool:
            return not await browsers_of(server, task["id"])

        await eventually(none_running, timeout=15)
        assert [r["name"] for r in (await api.get("/v1/browsers", headers=V)).json()["data"]] == []


async def test_a_launched_browser_whose_lock_cannot_be_taken_is_stopped(server, api, llm, monkeypatch):
    """Finding 7: a CDP client or a person of the account takes the fresh browser before the task does
    (409 `runtime.controller_busy`, simulated): the task fails, and the browser it launched is stopped
    (never left running until its idle timeout, holding one of the server's browser slots)."""
    await make_agent(api, llm)
    real_take = controller.take

    async def someone_else_holds_it(ctx, s, runtime_id, holder, ttl_ms, previous=None):
        if holder.kind == "invocation":
            raise controller.controller_busy(runtime_id, Holder("cdp", "someone"))
        return await real_take(ctx, s, runtime_id, holder, ttl_ms, previous)

    monkeypatch.setattr(controller, "take", someone_else_holds_it)
    task = (await api.post("/v1/tasks", json={"agent": "browsing", "input": "list the pages"}, headers=V)).json()
    try:
        done = (await api.get(f"/v1/tasks/{task['id']}", params={"wait": 30}, headers=V)).json()
        assert (done["status"], done["errorCode"]) == ("failed", "runtime.controller_busy"), done

        async def none_running() -> bool:
            return not await browsers_of(server, task["id"])

        # finish() records the end before it stops a browser it knows of: give it that time.
        await eventually(none_running, timeout=15)
    finally:
        monkeypatch.undo()
        async with server.ctx.db.read() as s:
            rows = list((await s.execute(select(Runtime).where(Runtime.name == f"task-{task['id'][-12:]}"))).scalars())
        for r in rows:
            await api.post(f"/v1/runtimes/{r.id}/stop")

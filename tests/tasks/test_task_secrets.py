"""A task filling a login: the vault's audit names the task (and its agent) as who filled it, never
`system`, so an account can tell which task used which secret."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.vault.models import VaultAudit
from tests.ai import conftest as ai_tier
from tests.toolcalls.test_browser_tools import LoginSite

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}


@pytest.fixture
def site():
    s = LoginSite()
    yield s
    s.close()


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
async def test_the_audit_of_a_fill_names_the_task_and_its_agent(server, api, llm, site):
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    path = f"audit/{uuid.uuid4().hex[:8]}"
    secret = await api.post(
        "/v1/secrets",
        json={"type": "login", "path": path, "username": "ann", "password": "pw-audit-1", "origins": [site.url]},
        headers=V,
    )
    assert secret.status_code == 201, secret.text
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
    async with server.ctx.db.read() as s:
        rows = list(
            (
                await s.execute(
                    select(VaultAudit)
                    .where(VaultAudit.secret_id == uuid.UUID(secret.json()["id"]))
                    .order_by(VaultAudit.created_at)
                )
            ).scalars()
        )
    assert [r.action for r in rows] == ["create", "fill"]
    assert rows[1].actor == {"kind": "task", "taskId": task["id"], "agentId": agent.json()["id"]}

"""Agents in process, over both backends: create with a model the stand-in LLM's credential offers,
behaviour changes as immutable versions, promotion and its approval rule, the built-in agents of every
space, archive keeping versions readable, and each bad input's documented code with nothing made."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.agents import service
from app.agents.models import Agent
from app.core.errors import DomainError
from tests.ai import conftest as ai_tier
from tests.support import error_of

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}


@pytest.fixture
async def credential(api, llm):
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "standin-model"},
        headers=V,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def create(api, **body):
    response = await api.post("/v1/agents", json={"model": "standin-model", **body}, headers=V)
    assert response.status_code == 201, response.text
    return response.json()


async def count_agents(server) -> int:
    async with server.ctx.db.read() as s:
        return (await s.execute(select(func.count()).select_from(Agent).where(Agent.builtin.is_(False)))).scalar_one()


async def test_versions_promotion_and_archive(server, api, credential):
    made = await create(api, name="shopper", instructions="Buy things", tools=["stagehand.act", "human.request"])
    assert (made["object"], made["name"], made["latestVersion"], made["promotedVersion"]) == ("agent", "shopper", 1, 1)
    v1 = made["version"]
    assert (v1["object"], v1["version"], v1["model"], v1["instructions"]) == (
        "agent.version",
        1,
        "standin-model",
        "Buy things",
    )
    assert v1["tools"] == ["stagehand.act", "human.request"] and v1["memory"] == "none"
    assert v1["scope"] == {"budgetUsd": None, "capabilities": [], "maxConcurrentRuntimes": 1, "spaces": []}
    agent_id = made["id"]

    # Metadata and name alone: no new version.
    renamed = await api.patch(f"/v1/agents/{agent_id}", json={"name": "buyer", "metadata": {"team": "x"}}, headers=V)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["latestVersion"], renamed.json()["metadata"]) == (
        "buyer",
        1,
        {"team": "x"},
    )
    # The same instructions again: no new version either.
    same = await api.patch(f"/v1/agents/{agent_id}", json={"instructions": "Buy things"}, headers=V)
    assert same.json()["latestVersion"] == 1

    changed = await api.patch(f"/v1/agents/{agent_id}", json={"instructions": "Buy cheap things"}, headers=V)
    body = changed.json()
    assert (body["latestVersion"], body["promotedVersion"], body["version"]["instructions"]) == (2, 1, "Buy things")
    v2 = (await api.get(f"/v1/agents/{agent_id}/versions/2", headers=V)).json()
    assert (v2["version"], v2["instructions"], v2["tools"]) == (
        2,
        "Buy cheap things",
        ["stagehand.act", "human.request"],
    )
    listed = (await api.get(f"/v1/agents/{agent_id}/versions?order=asc", headers=V)).json()
    assert [v["version"] for v in listed["data"]] == [1, 2] and listed["hasMore"] is False
    first = (await api.get(f"/v1/agents/{agent_id}/versions?limit=1", headers=V)).json()
    assert [v["version"] for v in first["data"]] == [2] and first["hasMore"] is True
    rest = (await api.get(f"/v1/agents/{agent_id}/versions?limit=1&cursor={first['nextCursor']}", headers=V)).json()
    assert [v["version"] for v in rest["data"]] == [1] and rest["hasMore"] is False
    # Version 1 is unchanged.
    assert (await api.get(f"/v1/agents/{agent_id}/versions/1", headers=V)).json() == v1

    promoted = (await api.post(f"/v1/agents/{agent_id}/versions/2/promote", json={}, headers=V)).json()
    assert (promoted["promotedVersion"], promoted["version"]["version"]) == (2, 2)
    by_name = (await api.get("/v1/agents/buyer?spaceId=default", headers=V)).json()
    assert by_name["id"] == agent_id and by_name["version"]["instructions"] == "Buy cheap things"

    missing = await api.post(f"/v1/agents/{agent_id}/versions/9/promote", json={}, headers=V)
    assert error_of(missing, 404)["code"] == "agent.version_not_found"
    assert (
        error_of(await api.get(f"/v1/agents/{agent_id}/versions/3", headers=V), 404)["code"]
        == "agent.version_not_found"
    )

    gone = await api.delete(f"/v1/agents/{agent_id}", headers=V)
    assert gone.json() == {"id": agent_id, "deleted": True}
    assert error_of(await api.get(f"/v1/agents/{agent_id}", headers=V), 404)["code"] == "agent.not_found"
    assert agent_id not in [a["id"] for a in (await api.get("/v1/agents", headers=V)).json()["data"]]
    # Versions stay readable; the name is free again.
    kept = (await api.get(f"/v1/agents/{agent_id}/versions", headers=V)).json()
    assert sorted(v["version"] for v in kept["data"]) == [1, 2]
    assert (await api.get(f"/v1/agents/{agent_id}/versions/1", headers=V)).json() == v1
    again = await create(api, name="buyer")
    assert again["id"] != agent_id


async def test_the_approval_rule_binds_everything_but_a_person(server, api, credential):
    made = await create(api, name="guarded", requireApprovalForPromotion=True)
    agent_id = made["id"]
    assert made["version"]["requireApprovalForPromotion"] is True
    await api.patch(f"/v1/agents/{agent_id}", json={"instructions": "new"}, headers=V)
    async with server.ctx.db.read() as s:
        agent = await s.get(Agent, uuid.UUID(agent_id))
    with pytest.raises(DomainError) as refused:  # an agent's own action (a task) is not a person
        await service.promote(server.ctx, agent, 2, by_person=False)
    assert (refused.value.code, refused.value.status) == ("agent.promotion_approval_required", 403)
    assert (await api.get(f"/v1/agents/{agent_id}", headers=V)).json()["promotedVersion"] == 1
    # A request with an account API key is a person's.
    promoted = await api.post(f"/v1/agents/{agent_id}/versions/2/promote", json={}, headers=V)
    assert promoted.status_code == 200 and promoted.json()["promotedVersion"] == 2


async def test_every_space_has_the_built_in_agents_and_they_cannot_change(server, api):
    space = (await api.post("/v1/spaces", json={"name": "lab"}, headers=V)).json()
    listed = (await api.get(f"/v1/agents?spaceId={space['id']}", headers=V)).json()["data"]
    by_name = {a["name"]: a for a in listed}
    assert set(by_name) == {"browser", "browser-use"}
    browser = by_name["browser"]
    assert browser["spaceId"] == space["id"] and browser["version"]["model"] == "default"
    assert "stagehand.act" in browser["version"]["tools"] and "secrets.fill" in browser["version"]["tools"]
    assert "captcha.solve" not in browser["version"]["tools"]
    # Looked at twice: still two, not four.
    again = (await api.get(f"/v1/agents?spaceId={space['id']}", headers=V)).json()["data"]
    assert sorted(a["id"] for a in again) == sorted(a["id"] for a in listed)
    got = await api.get(f"/v1/agents/browser-use?spaceId={space['id']}", headers=V)
    assert got.json()["id"] == by_name["browser-use"]["id"]

    patched = await api.patch(f"/v1/agents/{browser['id']}", json={"instructions": "x"}, headers=V)
    assert error_of(patched, 403)["code"] == "agent.builtin_immutable"
    deleted = await api.delete(f"/v1/agents/{browser['id']}", headers=V)
    assert error_of(deleted, 403)["code"] == "agent.builtin_immutable"
    taken = await api.post("/v1/agents", json={"name": "browser", "model": "m", "spaceId": space["id"]}, headers=V)
    assert error_of(taken, 409)["code"] == "agent.name_conflict"
    # The same name in two spaces is ambiguous without a space.
    await api.get("/v1/agents?spaceId=default", headers=V)
    assert error_of(await api.get("/v1/agents/browser", headers=V), 409)["code"] == "resource.name_ambiguous"


async def test_built_in_model_is_the_first_credentials_default(server, api, llm):
    space = (await api.post("/v1/spaces", json={"name": "m"}, headers=V)).json()
    agent = (await api.get(f"/v1/agents?spaceId={space['id']}&name=browser", headers=V)).json()["data"][0]
    async with server.ctx.db.read() as s:
        account_id = (await s.get(Agent, uuid.UUID(agent["id"]))).account_id
    with pytest.raises(DomainError) as none:
        await service.resolve_model(server.ctx, account_id, "default")
    assert none.value.code == "ai_credential.not_configured"
    made = await api.post(
        "/v1/ai/credentials",
        json={"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", "defaultModel": "qwen"},
        headers=V,
    )
    connection, model = await service.resolve_model(server.ctx, account_id, "default")
    assert (str(connection.id), model) == (made.json()["id"], "qwen")
    # A model written plainly or with its provider.
    connection, model = await service.resolve_model(server.ctx, account_id, "custom/standin-model")
    assert (str(connection.id), model) == (made.json()["id"], "standin-model")
    with pytest.raises(DomainError) as other:
        await service.resolve_model(server.ctx, account_id, "anthropic/standin-model")
    assert other.value.code == "agent.model_unavailable"


async def test_resolve_for_task_picks_the_promoted_or_the_named_version(server, api, credential):
    space = (await api.post("/v1/spaces", json={"name": "tasks"}, headers=V)).json()
    made = await create(api, name="worker", spaceId=space["id"], instructions="one")
    await api.patch(f"/v1/agents/{made['id']}", json={"instructions": "two"}, headers=V)
    async with server.ctx.db.read() as s:
        agent_row = await s.get(Agent, uuid.UUID(made["id"]))
    from app.accounts.service import Principal
    from app.spaces.models import Space

    p = Principal(account_id=agent_row.account_id, key_id=uuid.UUID(int=0))
    async with server.ctx.db.read() as s:
        space_row = await s.get(Space, uuid.UUID(space["id"]))
    agent, version = await service.resolve_for_task(server.ctx, p, "worker", space_row, None)
    assert (str(agent.id), version.version, version.instructions, version.engine) == (made["id"], 1, "one", "stagehand")
    _, named = await service.resolve_for_task(server.ctx, p, made["id"], space_row, 2)
    assert named.instructions == "two"
    with pytest.raises(DomainError) as missing:
        await service.resolve_for_task(server.ctx, p, "worker", space_row, 5)
    assert missing.value.code == "agent.version_not_found"
    with pytest.raises(DomainError) as unknown:
        await service.resolve_for_task(server.ctx, p, "nobody", space_row, None)
    assert unknown.value.code == "agent.not_found"
    _, builtin = await service.resolve_for_task(server.ctx, p, "browser-use", space_row, None)
    assert builtin.engine == "browser-use" and await service.needs_browser(server.ctx, p.account_id, builtin)
    assert not await service.needs_browser(server.ctx, p.account_id, named)
    assert service.allowed_spaces(named, space_row.id) == [space_row.id]
    scoped = await api.patch(
        f"/v1/agents/{made['id']}", json={"scope": {"spaces": ["default", space["id"]]}}, headers=V
    )
    _, wide = await service.resolve_for_task(server.ctx, p, made["id"], space_row, scoped.json()["latestVersion"])
    assert service.allowed_spaces(wide, space_row.id)[1] == space_row.id and len(wide.scope["spaces"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "gpt-nope"}, 400, "agent.model_unavailable"),
        ({"model": "openai/standin-model"}, 400, "agent.model_unavailable"),
        ({"tools": ["no.such.tool"]}, 400, "tool.not_found"),
        ({"tools": ["captcha.solve"]}, 400, "tool.unavailable"),
        ({"tools": ["computer.use"]}, 400, "tool.unavailable"),
        ({"tools": ["stagehand.act", "stagehand.act"]}, 400, "request.invalid"),
        ({"scope": {"spaces": [str(uuid.uuid4())]}}, 404, "space.not_found"),
        ({"scope": {"spaces": ["not-a-space"]}}, 404, "space.not_found"),
        ({"scope": {"budgetUsd": 500}}, 400, "agent.scope_unsupported"),
        ({"scope": {"capabilities": ["x"]}}, 400, "agent.scope_unsupported"),
        ({"scope": {"maxConcurrentRuntimes": 0}}, 400, "request.invalid"),
        ({"scope": {"unknown": 1}}, 400, "request.invalid"),
        ({"memory": "space_notes"}, 400, "agent.memory_unsupported"),
        ({"memory": "forever"}, 400, "request.invalid"),
        ({"name": "  "}, 400, "request.invalid"),
        ({"name": "x" * 201}, 400, "request.invalid"),
        ({"model": ""}, 400, "request.invalid"),
        ({"spaceId": str(uuid.uuid4())}, 404, "space.not_found"),
        ({"colour": "red"}, 400, "request.invalid"),
        ({"requireApprovalForPromotion": "yes"}, 400, "request.invalid"),
    ],
)
async def test_bad_agents_are_refused_and_nothing_is_made(server, api, credential, body, status, code):
    before = await count_agents(server)
    response = await api.post("/v1/agents", json={"name": "bad", "model": "standin-model", **body}, headers=V)
    assert error_of(response, status)["code"] == code
    assert await count_agents(server) == before


async def test_bad_updates_leave_the_agent_as_it_was(server, api, credential):
    made = await create(api, name="steady")
    other = await create(api, name="other")
    for body, status, code in [
        ({"model": "gpt-nope"}, 400, "agent.model_unavailable"),
        ({"tools": ["run.files.add"]}, 400, "tool.unavailable"),
        ({"tools": ["mystery"]}, 400, "tool.not_found"),
        ({"name": other["name"]}, 409, "agent.name_conflict"),
        ({"name": "browser-use"}, 409, "agent.name_conflict"),
        ({"memory": "space_notes"}, 400, "agent.memory_unsupported"),
        ({"spaceId": "default"}, 400, "request.invalid"),
    ]:
        response = await api.patch(f"/v1/agents/{made['id']}", json=body, headers=V)
        assert error_of(response, status)["code"] == code, body
    now = (await api.get(f"/v1/agents/{made['id']}", headers=V)).json()
    assert (now["name"], now["latestVersion"]) == ("steady", 1)
    assert error_of(await api.patch(f"/v1/agents/{uuid.uuid4()}", json={}, headers=V), 404)["code"] == "agent.not_found"


async def test_no_credential_means_no_model(api):
    response = await api.post("/v1/agents", json={"name": "a", "model": "standin-model"}, headers=V)
    error = error_of(response, 400)
    assert error["code"] == "agent.model_unavailable" and "no enabled AI credential" in error["message"]


async def test_an_agent_names_custom_tools_of_its_own_space(api, credential):
    hook = {
        "name": "crm_lookup",
        "implementation": {"type": "webhook", "url": "http://127.0.0.1:9/crm"},
        "inputSchema": {"type": "object"},
        "outputSchema": {"type": "object"},
    }
    tool = (await api.post("/v1/tools", json=hook, headers=V)).json()
    made = await create(api, name="crm", tools=["crm_lookup", tool["id"], "files.list"])
    assert made["version"]["tools"] == ["crm_lookup", tool["id"], "files.list"]
    lab = (await api.post("/v1/spaces", json={"name": "elsewhere"}, headers=V)).json()
    refused = await api.post(
        "/v1/agents",
        json={"name": "crm", "model": "standin-model", "spaceId": lab["id"], "tools": ["crm_lookup"]},
        headers=V,
    )
    assert error_of(refused, 400)["code"] == "tool.not_found"


async def test_deleting_a_space_takes_its_agents_and_tools(server, api, credential):
    space = (await api.post("/v1/spaces", json={"name": "short-lived"}, headers=V)).json()
    made = await create(api, name="temp", spaceId=space["id"])
    hook = {
        "name": "temp_tool",
        "spaceId": space["id"],
        "implementation": {"type": "webhook", "url": "http://127.0.0.1:9/x"},
        "inputSchema": {"type": "object"},
        "outputSchema": {"type": "object"},
    }
    assert (await api.post("/v1/tools", json=hook, headers=V)).status_code == 201
    deleted = await api.delete(f"/v1/spaces/{space['id']}", headers=V)
    assert deleted.status_code in (200, 202, 204), deleted.text
    assert error_of(await api.get(f"/v1/agents/{made['id']}", headers=V), 404)["code"] == "agent.not_found"
    async with server.ctx.db.read() as s:
        left = (
            await s.execute(select(func.count()).select_from(Agent).where(Agent.space_id == uuid.UUID(space["id"])))
        ).scalar_one()
    assert left == 0


async def test_another_accounts_agents_and_tools_are_not_found(server, api, credential):
    made = await create(api, name="private")
    hook = {
        "name": "private_tool",
        "implementation": {"type": "webhook", "url": "http://127.0.0.1:9/x"},
        "inputSchema": {"type": "object"},
        "outputSchema": {"type": "object"},
    }
    tool = (await api.post("/v1/tools", json=hook, headers=V)).json()
    async with await server.client("intruder") as other:
        for method, path, code in [
            ("GET", f"/v1/agents/{made['id']}", "agent.not_found"),
            ("PATCH", f"/v1/agents/{made['id']}", "agent.not_found"),
            ("DELETE", f"/v1/agents/{made['id']}", "agent.not_found"),
            ("GET", f"/v1/agents/{made['id']}/versions", "agent.not_found"),
            ("GET", f"/v1/agents/{made['id']}/versions/1", "agent.not_found"),
            ("POST", f"/v1/agents/{made['id']}/versions/1/promote", "agent.not_found"),
            ("GET", "/v1/agents/private", "agent.not_found"),
            ("GET", f"/v1/tools/{tool['id']}", "tool.not_found"),
            ("PATCH", f"/v1/tools/{tool['id']}", "tool.not_found"),
            ("DELETE", f"/v1/tools/{tool['id']}", "tool.not_found"),
        ]:
            body = {"currentRevisionId": "x"} if "tools" in path and method == "PATCH" else {}
            kw = {"json": body} if method in ("PATCH", "POST") else {}
            response = await other.request(method, path, headers=V, **kw)
            assert error_of(response, 404)["code"] == code, (method, path)
        listed = (await other.get("/v1/agents", headers=V)).json()["data"]
        assert made["id"] not in [a["id"] for a in listed]
        assert tool["id"] not in [t["id"] for t in (await other.get("/v1/tools?limit=200", headers=V)).json()["data"]]
    assert (await api.get(f"/v1/agents/{made['id']}", headers=V)).json()["latestVersion"] == 1


async def test_an_endpoint_that_cannot_be_asked_is_named_and_nothing_is_made(server, api, credential, llm):
    before = await count_agents(server)
    llm.models_status = 500
    response = await api.post("/v1/agents", json={"name": "x", "model": "standin-model"}, headers=V)
    error = error_of(response, 502)
    assert error["code"] == "ai.gateway_unavailable" and error["details"]["credentialId"] == credential["id"]
    assert await count_agents(server) == before


async def test_a_create_retried_with_its_idempotency_key_makes_one_agent(server, api, credential):
    before = await count_agents(server)
    headers = {**V, "Idempotency-Key": "agent-once"}
    first = await api.post("/v1/agents", json={"name": "once", "model": "standin-model"}, headers=headers)
    again = await api.post("/v1/agents", json={"name": "once", "model": "standin-model"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert await count_agents(server) == before + 1
    other = await api.post("/v1/agents", json={"name": "twice", "model": "standin-model"}, headers=headers)
    assert other.status_code == 409

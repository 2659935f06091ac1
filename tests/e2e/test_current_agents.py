"""Agents and tools through the official 0.3 client, unchanged, against a real server process whose
account has the stand-in LLM (a real OpenAI-format endpoint on loopback) as its AI credential:
versions, promotion and its approval rule, the built-in agents, archive keeping versions readable,
custom webhook tools, and the documented errors as the SDK's exceptions."""

from __future__ import annotations

import pytest
from bctrl._generated.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from bctrl._generated.types.tool_create_request_one import ToolCreateRequestOne
from bctrl._generated.types.tool_create_request_zero import ToolCreateRequestZero

from tests.ai import conftest as ai_tier
from tests.e2e.test_current_sdk import code_of, unique

llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine


@pytest.fixture(scope="module")
def space(sdk):
    """A space of the module's own: the session's account is shared, and every space has built-ins."""
    made = sdk.spaces.create(name=unique("agents"))
    yield made.id
    sdk.spaces.delete(made.id, wait=30)  # its agents and tools go with it


@pytest.fixture
def credential(client, llm):
    made = client.ai.credentials.create(
        provider="custom",
        base_url=f"{llm.base}/v1",
        api_key="sk-test",
        name=unique("standin"),
        default_model="standin-model",
    )
    yield made
    try:
        client.ai.credentials.delete(made.id)
    except NotFoundError:
        pass


def test_versions_promotion_and_delete(client, credential, space):
    name = unique("shopper")
    made = client.agents.create(
        name=name,
        model="standin-model",
        instructions="Find the price",
        tools=["stagehand.extract", "human.request"],
        space_id=space,
        metadata={"team": "pricing"},
    )
    assert (made.object, made.name, made.space_id, made.latest_version, made.promoted_version) == (
        "agent",
        name,
        space,
        1,
        1,
    )
    assert (made.version.version, made.version.model, made.version.tools) == (
        1,
        "standin-model",
        ["stagehand.extract", "human.request"],
    )
    assert made.version.scope.spaces == [] and made.version.scope.max_concurrent_runtimes == 1
    assert client.agents.get(made.id) == made
    assert client.agents.get(name, request_options={"additional_query_parameters": {"spaceId": space}}).id == made.id

    renamed = client.agents.update(made.id, metadata={"team": "growth"})
    assert (renamed.latest_version, renamed.metadata) == (1, {"team": "growth"})
    updated = client.agents.update(made.id, instructions="Find the cheapest price", model="custom/standin-model")
    assert (updated.latest_version, updated.promoted_version, updated.version.version) == (2, 1, 1)

    v2 = client.agents.versions.get(made.id, 2)
    assert (v2.version, v2.instructions, v2.model, v2.agent_id) == (
        2,
        "Find the cheapest price",
        "custom/standin-model",
        made.id,
    )
    listed = client.agents.versions.list(made.id, order="asc")
    assert [v.version for v in listed.data] == [1, 2] and listed.has_more is False
    assert client.agents.versions.get(made.id, 1) == made.version

    promoted = client.agents.versions.promote(made.id, 2)
    assert (promoted.promoted_version, promoted.version.instructions) == (2, "Find the cheapest price")
    with pytest.raises(NotFoundError) as missing:
        client.agents.versions.promote(made.id, 7)
    assert code_of(missing) == "agent.version_not_found"

    deleted = client.agents.delete(made.id)
    assert (deleted.id, deleted.deleted) == (made.id, True)
    with pytest.raises(NotFoundError) as gone:
        client.agents.get(made.id)
    assert code_of(gone) == "agent.not_found"
    assert made.id not in [a.id for a in client.agents.list(space_id=space, limit=200).data]
    # Its versions remain readable.
    assert [v.version for v in client.agents.versions.list(made.id, order="asc").data] == [1, 2]
    assert client.agents.versions.get(made.id, 2) == v2


def test_approval_required_versions_are_promoted_by_a_person(client, credential, space):
    made = client.agents.create(
        name=unique("guarded"), model="standin-model", require_approval_for_promotion=True, space_id=space
    )
    assert made.version.require_approval_for_promotion is True
    client.agents.update(made.id, require_approval_for_promotion=False, instructions="relaxed")
    # The API key is an account's: a person. (A task's own promotion attempt is refused with 403
    # agent.promotion_approval_required: tests/current/test_agents.py.)
    promoted = client.agents.versions.promote(made.id, 2)
    assert promoted.promoted_version == 2 and promoted.version.require_approval_for_promotion is False
    client.agents.delete(made.id)


def test_built_in_agents_are_listed_and_fixed(client, space):
    listed = client.agents.list(space_id=space, limit=200).data
    builtins = {a.name: a for a in listed if a.name in ("browser", "browser-use")}
    assert set(builtins) == {"browser", "browser-use"}
    assert all(a.version.model == "default" for a in builtins.values())
    assert "stagehand.act" in builtins["browser"].version.tools
    with pytest.raises(ForbiddenError) as fixed:
        client.agents.update(builtins["browser"].id, instructions="mine now")
    assert code_of(fixed) == "agent.builtin_immutable"
    with pytest.raises(ForbiddenError) as kept:
        client.agents.delete(builtins["browser-use"].id)
    assert code_of(kept) == "agent.builtin_immutable"


def test_bad_agents_are_the_sdks_exceptions(client, credential, space):
    for kwargs, code in [
        ({"model": "no-such-model"}, "agent.model_unavailable"),
        ({"model": "standin-model", "tools": ["nope"]}, "tool.not_found"),
        ({"model": "standin-model", "tools": ["captcha.solve"]}, "tool.unavailable"),
        ({"model": "standin-model", "memory": "space_notes"}, "agent.memory_unsupported"),
    ]:
        with pytest.raises(BadRequestError) as refused:
            client.agents.create(name=unique("bad"), space_id=space, **kwargs)
        assert code_of(refused) == code, kwargs
    with pytest.raises(NotFoundError) as no_space:
        client.agents.create(name=unique("bad"), model="standin-model", space_id=space, scope={"spaces": ["nowhere"]})
    assert code_of(no_space) == "space.not_found"
    assert not [a for a in client.agents.list(space_id=space, limit=200).data if a.name.startswith("bad-")]


def test_a_webhook_tool_from_create_to_delete(client, space):
    name = unique("lookup").replace("-", "_")
    made = client.tools.create(
        request=ToolCreateRequestZero(
            name=name,
            description="Look a price up",
            implementation={"type": "webhook", "url": "http://127.0.0.1:9/price", "timeoutMs": 2000},
            input_schema={"type": "object", "properties": {"sku": {"type": "string"}}},
            output_schema={"type": "object"},
            space_id=space,
        )
    )
    assert (made.name, made.space_id, made.implementation.type, made.implementation.timeout_ms) == (
        name,
        space,
        "webhook",
        2000,
    )
    assert client.tools.get(made.id) == made
    listed = client.tools.list(space_id=space, limit=200).data
    assert made.id in [t.id for t in listed] and "stagehand.act" in [t.name for t in listed]
    assert "captcha.solve" not in [t.name for t in listed]

    updated = client.tools.update(made.id, current_revision_id=made.current_revision_id, description="Prices")
    assert updated.description == "Prices" and updated.current_revision_id != made.current_revision_id
    with pytest.raises(ConflictError) as stale:
        client.tools.update(made.id, current_revision_id=made.current_revision_id, description="x")
    assert code_of(stale) == "tool.revision_conflict"

    with pytest.raises(BadRequestError) as code_tool:
        client.tools.create(
            request=ToolCreateRequestOne(
                name=unique("code").replace("-", "_"),
                implementation={"type": "code", "source": "export default () => 1"},
                input_schema={"type": "object"},
                output_schema={"type": "object"},
            )
        )
    assert code_of(code_tool) == "tool.implementation_unsupported"
    with pytest.raises(ForbiddenError) as builtin:
        client.tools.delete("stagehand.act")
    assert code_of(builtin) == "tool.builtin_immutable"

    deleted = client.tools.delete(made.id)
    assert (deleted.id, deleted.deleted) == (made.id, True)
    with pytest.raises(NotFoundError) as gone:
        client.tools.get(made.id)
    assert code_of(gone) == "tool.not_found"

"""AI credentials and models through the official 0.3 client, unchanged (`from bctrl import Bctrl`),
against a real server process that asks the stand-in LLM (a real OpenAI / Anthropic wire server on
loopback) whether it accepts a key and which models it offers."""

from __future__ import annotations

import pytest
from bctrl import AsyncBctrl
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, NotFoundError

from tests.ai import conftest as ai_tier
from tests.e2e.test_current_sdk import VERSION, code_of, error_of, unique

# The AI tier's fixtures: the stand-in LLM (afresh for each test) and the guard against leaving loopback.
llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine
NO_RETRY = {"max_retries": 0}


@pytest.fixture
def credentials(client):
    """Credentials a test saves (by id), deleted in teardown: the live server's account is shared."""
    made: list[str] = []
    yield made.append
    for credential_id in made:
        try:
            client.ai.credentials.delete(credential_id)
        except NotFoundError:
            pass


def test_a_credential_from_create_to_delete(client, credentials, llm, live):
    name = unique("vllm")
    made = client.ai.credentials.create(
        provider="custom", base_url=f"{llm.base}/v1", api_key="sk-test", name=name, default_model="qwen", test=True
    )
    credentials(made.id)
    assert (made.object, made.name, made.provider, made.status) == ("ai_credential", name, "custom", "enabled")
    assert made.has_api_key is True and made.api_key_reference is None and made.default_model == "qwen"
    # Tested before it was kept: the endpoint was asked with the key.
    assert llm.requests[-1]["path"] == "/v1/models" and llm.requests[-1]["headers"]["authorization"] == "Bearer sk-test"

    assert client.ai.credentials.get(made.id) == made
    listed = client.ai.credentials.list(name=name)
    assert [c.id for c in listed.data] == [made.id] and listed.has_more is False
    assert [c.id for c in client.ai.credentials.list(provider="custom", status="enabled").data].count(made.id) == 1
    assert made.id not in [c.id for c in client.ai.credentials.list(status="disabled").data]

    result = client.ai.credentials.test(made.id)
    assert (result.object, result.ok, result.error) == ("test.result", True, None) and result.latency_seconds >= 0

    updated = client.ai.credentials.update(made.id, name=f"{name}-2", status="disabled", api_key="sk-other")
    assert (updated.name, updated.status, updated.has_api_key) == (f"{name}-2", "disabled", True)
    refused = client.ai.credentials.test(made.id)  # the endpoint only takes sk-test
    assert refused.ok is False and "refused the credentials (401)" in refused.error and "sk-other" not in refused.error

    # The key is shown nowhere, whatever the generation asking.
    with live.client() as raw:
        for headers in ({}, {"BCTRL-Version": VERSION}):
            for path in (f"/v1/ai/credentials/{made.id}", "/v1/ai/credentials?limit=200"):
                text = raw.get(path, headers=headers).text
                assert "sk-other" not in text and "sk-test" not in text

    deleted = client.ai.credentials.delete(made.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (made.id, "ai_credential", True)
    with pytest.raises(NotFoundError) as gone:
        client.ai.credentials.get(made.id)
    assert code_of(gone) == "ai_credential.not_found"


def test_errors_are_the_sdk_exceptions(client, llm):
    with pytest.raises(BadRequestError) as refused:
        client.ai.credentials.create(provider="custom", base_url=f"{llm.base}/v1", api_key="sk-wrong", test=True)
    error = error_of(refused)
    assert error["code"] == "ai_credential.verification_failed" and "sk-wrong" not in str(error)
    with pytest.raises(BadRequestError) as no_url:
        client.ai.credentials.create(provider="custom", api_key="k")
    assert code_of(no_url) == "ai_credential.base_url_required"
    with pytest.raises(BadRequestError) as azure:
        client.ai.credentials.create(provider="azure", api_key="k")
    assert code_of(azure) == "ai_credential.provider_unsupported"
    with pytest.raises(BadRequestError) as reference:
        client.ai.credentials.create(provider="openai", api_key="secret:ai/openai#value")
    assert code_of(reference) == "ai_credential.api_key_reference_unsupported"
    with pytest.raises(BadRequestError) as bad_status:
        client.ai.credentials.create(provider="openai", api_key="k", status="paused")
    assert code_of(bad_status) == "request.invalid"
    for call in (
        lambda: client.ai.credentials.get("00000000-0000-7000-8000-000000000000"),
        lambda: client.ai.credentials.update("nope", name="x"),
        lambda: client.ai.credentials.delete("nope"),
        lambda: client.ai.credentials.test("nope"),
    ):
        with pytest.raises(NotFoundError) as unknown:
            call()
        assert code_of(unknown) == "ai_credential.not_found"


def test_models_are_asked_of_the_credentials_endpoint(client, credentials, llm):
    llm.model_list = [
        {"id": "plain", "object": "model", "created": 1_700_000_000},
        {"id": "tools", "name": "With tools", "created": 1_700_000_100, "supported_parameters": ["tools"]},
    ]
    made = client.ai.credentials.create(provider="custom", base_url=f"{llm.base}/v1", api_key="sk-test")
    credentials(made.id)
    scoped = {"additional_query_parameters": {"credentialId": made.id}}
    found = client.ai.models.list(request_options=scoped)
    assert [m.id for m in found.data] == ["tools", "plain"] and found.has_more is False
    tools = found.data[0]
    assert (tools.object, tools.provider, tools.display_name, tools.managed, tools.status) == (
        "ai_model",
        "custom",
        "With tools",
        False,
        "supported",
    )
    assert tools.supports_tools is True and tools.supports_vision is False
    # Without credentialId: every enabled credential of the account, this one included.
    everything = client.ai.models.list(provider="custom", limit=200)
    assert {"tools", "plain"} <= {m.id for m in everything.data}
    first = client.ai.models.list(limit=1, order="asc", request_options=scoped)
    assert [m.id for m in first.data] == ["plain"] and first.has_more is True
    rest = client.ai.models.list(limit=1, order="asc", cursor=first.next_cursor, request_options=scoped)
    assert [m.id for m in rest.data] == ["tools"] and rest.has_more is False
    assert client.ai.models.list(managed=True).data == []


def test_an_endpoint_that_is_down_is_an_upstream_error_not_a_500(client, credentials, llm):
    down = client.ai.credentials.create(provider="custom", base_url="http://127.0.0.1:9/v1", api_key="k")
    credentials(down.id)
    with pytest.raises(ApiError) as upstream:
        client.ai.models.list(request_options={"additional_query_parameters": {"credentialId": down.id}, **NO_RETRY})
    assert upstream.value.status_code == 502
    error = error_of(upstream)
    assert error["code"] == "ai.gateway_unavailable" and error["reasonClass"] == "upstream"
    assert error["details"]["credentialId"] == down.id
    result = client.ai.credentials.test(down.id)
    assert result.ok is False and "cannot be reached" in result.error


async def test_the_async_client(live, llm):
    client = AsyncBctrl(token=live.api_key, base_url=live.url)
    made = await client.ai.credentials.create(provider="anthropic", base_url=llm.base, api_key="sk-test")
    try:
        assert (await client.ai.credentials.test(made.id)).ok is True
        assert llm.requests[-1]["headers"]["x-api-key"] == "sk-test"
        models = await client.ai.models.list(request_options={"additional_query_parameters": {"credentialId": made.id}})
        assert [m.id for m in models.data] == ["standin-model"] and models.data[0].provider == "anthropic"
    finally:
        await client.ai.credentials.delete(made.id)


def test_the_flat_client_keeps_its_shape_on_the_same_path(live, llm):
    with live.client() as raw:
        made = raw.post(
            "/v1/ai/credentials", json={"label": "flat", "provider": "openai-compatible", "baseUrl": f"{llm.base}/v1"}
        )
        assert made.status_code == 201 and made.json()["label"] == "flat" and "hasStoredKey" in made.json()
        cid = made.json()["id"]
        try:
            assert raw.post("/v1/ai/credentials", json={"provider": "openai", "name": "x"}).status_code == 400
            current = raw.get(f"/v1/ai/credentials/{cid}", headers={"BCTRL-Version": VERSION}).json()
            assert (current["name"], current["provider"], current["hasApiKey"]) == ("flat", "custom", False)
        finally:
            assert raw.delete(f"/v1/ai/credentials/{cid}").status_code == 200

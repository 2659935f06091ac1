"""AI credentials and models in the current generation's shape, in process over both backends: the
0.3 words (`name`, `status`, `hasApiKey`), a key that is never shown and stored encrypted, `test` on
create and on its own, the model lists asked of the real endpoint (the stand-in LLM), and the flat
routes of the same paths unchanged for requests without `BCTRL-Version`."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.ai.models import AiConnection
from app.ai.secrets import SecretBox
from tests.ai import conftest as ai_tier
from tests.support import error_of

# The AI tier's fixtures: the stand-in LLM (afresh for each test) and the guard against leaving loopback.
llm, fresh_script, no_traffic_off_this_machine = ai_tier.llm, ai_tier.fresh_script, ai_tier.no_traffic_off_this_machine

V = {"BCTRL-Version": "2026-10-03"}
BASE = "/v1/ai/credentials"


async def create(api, **body):
    response = await api.post(BASE, json=body, headers=V)
    assert response.status_code == 201, response.text
    return response.json()


def custom(llm, **more):
    return {"provider": "custom", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test", **more}


async def test_crud_in_the_current_words_and_the_key_is_never_shown(server, api, llm):
    made = await create(api, **custom(llm, name="local vLLM", defaultModel="qwen"))
    assert made["object"] == "ai_credential" and made["name"] == "local vLLM" and made["provider"] == "custom"
    assert made["status"] == "enabled" and made["hasApiKey"] is True and made["apiKeyReference"] is None
    assert made["baseUrl"] == f"{llm.base}/v1" and made["defaultModel"] == "qwen"
    cid = made["id"]

    async with server.ctx.db.read() as s:
        sealed = (
            await s.execute(select(AiConnection.api_key_encrypted).where(AiConnection.id == uuid.UUID(cid)))
        ).scalar_one()
    assert sealed and "sk-test" not in sealed

    got = await api.get(f"{BASE}/{cid}", headers=V)
    assert got.json() == made and "sk-test" not in got.text

    patched = await api.patch(
        f"{BASE}/{cid}", json={"name": "renamed", "status": "disabled", "apiKey": None}, headers=V
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["status"], body["hasApiKey"], body["defaultModel"]) == (
        "renamed",
        "disabled",
        False,
        "qwen",
    )

    # The earlier generation reads the same row in its own words.
    flat = (await api.get(f"{BASE}/{cid}")).json()
    assert (flat["label"], flat["enabled"], flat["provider"], flat["hasStoredKey"]) == (
        "renamed",
        False,
        "openai-compatible",
        False,
    )

    deleted = await api.delete(f"{BASE}/{cid}", headers=V)
    assert deleted.json() == {"id": cid, "object": "ai_credential", "deleted": True}
    assert error_of(await api.get(f"{BASE}/{cid}", headers=V), 404)["code"] == "ai_credential.not_found"


async def test_a_name_defaults_server_side_and_status_disabled_is_kept(api, llm):
    made = await create(api, provider="anthropic", baseUrl=llm.base, apiKey="sk-test", status="disabled")
    assert made["name"] == f"anthropic-{made['id'].replace('-', '')[-8:]}" and made["status"] == "disabled"
    # A hosted OpenAI-compatible provider needs no baseUrl: its own is used.
    groq = await create(api, provider="groq", apiKey="gsk")
    assert groq["provider"] == "groq" and groq["baseUrl"] is None


async def test_list_filters_orders_and_pages(api, llm):
    a = await create(api, **custom(llm, name="a"))
    b = await create(api, provider="anthropic", baseUrl=llm.base, apiKey="k", name="b", status="disabled")
    c = await create(api, provider="openai", apiKey="k", name="c")

    async def ids(**params):
        response = await api.get(BASE, params=params, headers=V)
        assert response.status_code == 200, response.text
        return [x["id"] for x in response.json()["data"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(order="asc") == [a["id"], b["id"], c["id"]]
    assert await ids(provider="custom") == [a["id"]]
    assert await ids(status="disabled") == [b["id"]]
    assert await ids(name="c") == [c["id"]]
    first = (await api.get(BASE, params={"limit": 2}, headers=V)).json()
    assert [x["id"] for x in first["data"]] == [c["id"], b["id"]] and first["hasMore"] is True
    rest = (await api.get(BASE, params={"limit": 2, "cursor": first["nextCursor"]}, headers=V)).json()
    assert [x["id"] for x in rest["data"]] == [a["id"]] and rest["hasMore"] is False and rest["nextCursor"] is None
    assert error_of(await api.get(BASE, params={"provider": "nope"}, headers=V), 400)["code"] == "request.invalid"


async def test_test_on_create_keeps_only_a_credential_the_endpoint_accepts(api, llm):
    refused = await api.post(BASE, json=custom(llm, apiKey="sk-wrong", test=True), headers=V)
    error = error_of(refused, 400)
    assert error["code"] == "ai_credential.verification_failed" and "refused the credentials (401)" in error["message"]
    assert "sk-wrong" not in refused.text
    down = await api.post(BASE, json={**custom(llm), "baseUrl": "http://127.0.0.1:9/v1", "test": True}, headers=V)
    assert error_of(down, 400)["code"] == "ai_credential.verification_failed"
    assert (await api.get(BASE, headers=V)).json()["data"] == []  # nothing kept

    kept = await create(api, **custom(llm, test=True))
    assert llm.requests[-1]["path"] == "/v1/models" and llm.requests[-1]["headers"]["authorization"] == "Bearer sk-test"
    assert [x["id"] for x in (await api.get(BASE, headers=V)).json()["data"]] == [kept["id"]]


async def test_test_says_whether_the_endpoint_accepts_the_key(api, llm):
    good = await create(api, **custom(llm))
    result = (await api.post(f"{BASE}/{good['id']}/test", headers=V)).json()
    assert result["object"] == "test.result" and result["ok"] is True and result["error"] is None
    assert result["latencySeconds"] >= 0 and result["checkedAt"].endswith("Z")

    wrong = await create(api, provider="anthropic", baseUrl=llm.base, apiKey="sk-wrong")
    result = (await api.post(f"{BASE}/{wrong['id']}/test", headers=V)).json()
    assert (
        result["ok"] is False and "refused the credentials (401)" in result["error"] and "sk-wrong" not in str(result)
    )
    assert llm.requests[-1]["headers"]["x-api-key"] == "sk-wrong"

    down = await create(api, **{**custom(llm), "baseUrl": "http://127.0.0.1:9/v1"})
    result = (await api.post(f"{BASE}/{down['id']}/test", headers=V)).json()
    assert result["ok"] is False and "cannot be reached" in result["error"]


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({"provider": "azure", "apiKey": "k"}, "ai_credential.provider_unsupported", "provider"),
        ({"provider": "custom", "apiKey": "k"}, "ai_credential.base_url_required", "baseUrl"),
        (
            {"provider": "openai", "apiKey": "secret:ai/openai#value"},
            "ai_credential.api_key_reference_unsupported",
            "apiKey",
        ),
        ({"provider": "openai", "name": "x" * 201}, "request.invalid", "name"),
        ({"provider": "openai", "status": "paused"}, "request.invalid", "status"),
        ({"provider": "openai", "test": "yes"}, "request.invalid", "test"),
        ({"provider": "openai", "label": "flat word"}, "request.invalid", "label"),
        ({"provider": "openai-compatible", "baseUrl": "http://x"}, "request.invalid", "provider"),
        ({"provider": "openai", "baseUrl": "ftp://models"}, "request.invalid", "baseUrl"),
        ({"provider": "openai", "baseUrl": "https://\u0012x"}, "request.invalid", "baseUrl"),
        ({"provider": "openai", "baseUrl": "http://"}, "request.invalid", "baseUrl"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_keeps_nothing(api, body, code, field):
    error = error_of(await api.post(BASE, json=body, headers=V), 400)
    assert error["code"] == code and error["reasonClass"] == "invalid_input" and field in str(error)
    assert (await api.get(BASE, headers=V)).json()["data"] == []


async def test_updates_are_checked_too(api, llm):
    made = await create(api, **custom(llm))
    path = f"{BASE}/{made['id']}"
    for body in ({"status": "off"}, {"name": ""}, {"apiKey": "secret:x"}, {"baseUrl": None}, {"provider": "openai"}):
        assert (await api.patch(path, json=body, headers=V)).status_code == 400, body
    assert (await api.get(path, headers=V)).json() == made


async def test_other_accounts_and_unknown_ids_are_404(server, api, llm):
    cid = (await create(api, **custom(llm)))["id"]
    async with await server.client("intruder") as other:
        for method, path in (
            ("get", f"{BASE}/{cid}"),
            ("patch", f"{BASE}/{cid}"),
            ("delete", f"{BASE}/{cid}"),
            ("post", f"{BASE}/{cid}/test"),
        ):
            kwargs = {"json": {"name": "mine"}} if method == "patch" else {}
            response = await getattr(other, method)(path, headers=V, **kwargs)
            assert error_of(response, 404)["code"] == "ai_credential.not_found", (method, path)
        assert (await other.get(BASE, headers=V)).json()["data"] == []
        models = await other.get("/v1/ai/models", params={"credentialId": cid}, headers=V)
        assert error_of(models, 404)["code"] == "ai_credential.not_found"
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        assert error_of(await api.get(f"{BASE}/{unknown}", headers=V), 404)["code"] == "ai_credential.not_found"
    assert (await api.get(f"{BASE}/{cid}", headers=V)).status_code == 200


async def test_the_flat_routes_answer_as_before_without_the_header(api, llm):
    # The 0.3 words are the flat route's unknown fields; its own words still work and list in its shape.
    assert (await api.post(BASE, json={"provider": "openai", "name": "x", "status": "enabled"})).status_code == 400
    flat = await api.post(BASE, json={"label": "flat", "provider": "openai-compatible", "baseUrl": f"{llm.base}/v1"})
    assert flat.status_code == 201 and "hasStoredKey" in flat.json()
    listed = (await api.get(BASE)).json()
    assert listed["aiConnections"] == listed["data"] and listed["data"][0]["label"] == "flat"
    current = (await api.get(BASE, headers=V)).json()["data"]
    assert current[0]["name"] == "flat" and current[0]["provider"] == "custom" and "label" not in current[0]


# --- models ---


async def models(api, expect: int = 200, **params):
    response = await api.get("/v1/ai/models", params=params, headers=V)
    assert response.status_code == expect, response.text
    return response.json()


async def test_models_are_what_the_endpoints_offer(api, llm):
    llm.model_list = [
        {"id": "gpt-x", "object": "model", "created": 1_700_000_000, "owned_by": "standin"},
        {
            "id": "vision-tools",
            "name": "Vision and tools",
            "created": 1_700_000_100,
            "supported_parameters": ["tools", "response_format", "reasoning"],
            "architecture": {"input_modalities": ["text", "image"]},
        },
    ]
    assert (await models(api))["data"] == []  # no credentials, no models
    one = await create(api, **custom(llm))
    two = await create(api, **custom(llm, name="second"))
    await create(api, **custom(llm, name="off", status="disabled", apiKey="sk-wrong"))  # disabled: not asked

    listed = await models(api)
    assert [m["id"] for m in listed["data"]] == ["vision-tools", "gpt-x"] and listed["hasMore"] is False
    rich, plain = listed["data"]
    assert rich["object"] == "ai_model" and rich["displayName"] == "Vision and tools" and rich["provider"] == "custom"
    assert (rich["supportsTools"], rich["supportsVision"], rich["supportsStructuredOutput"]) == (True, True, True)
    assert rich["supportsReasoningEffort"] is True and rich["supportsThinkingBudget"] is False
    assert (plain["displayName"], plain["supportsTools"], plain["supportsVision"]) == ("gpt-x", False, False)
    assert (
        plain["createdAt"] == "2023-11-14T22:13:20.000Z"
        and plain["managed"] is False
        and plain["status"] == "supported"
    )
    assert sorted(plain["credentialIds"]) == sorted([one["id"], two["id"]])

    assert [m["id"] for m in (await models(api, order="asc"))["data"]] == ["gpt-x", "vision-tools"]
    page = await models(api, limit=1)
    assert [m["id"] for m in page["data"]] == ["vision-tools"] and page["hasMore"] is True
    page = await models(api, limit=1, cursor=page["nextCursor"])
    assert [m["id"] for m in page["data"]] == ["gpt-x"] and page["hasMore"] is False
    assert (await models(api, managed="true"))["data"] == []
    assert (await models(api, status="recommended"))["data"] == []
    assert len((await models(api, status="supported"))["data"]) == 2
    assert (await models(api, provider="openai"))["data"] == []
    assert len((await models(api, provider="custom"))["data"]) == 2
    assert (await models(api, 400, cursor="bm90LWEtY3Vyc29y"))["error"]["code"] == "request.invalid"


async def test_anthropic_models_are_followed_page_by_page(api, llm):
    llm.model_list = [
        {"type": "model", "id": f"claude-{i:04}", "display_name": f"Claude {i}", "created_at": "2025-01-02T03:04:05Z"}
        for i in range(1001)
    ]
    made = await create(api, provider="anthropic", baseUrl=llm.base, apiKey="sk-test")
    found = await models(api, credentialId=made["id"], limit=200, order="asc")
    assert [m["id"] for m in found["data"]][:2] == ["claude-0000", "claude-0001"]
    assert found["data"][0]["displayName"] == "Claude 0" and found["data"][0]["provider"] == "anthropic"
    assert found["data"][0]["createdAt"] == "2025-01-02T03:04:05.000Z"
    seen, cursor = len(found["data"]), found["nextCursor"]
    while cursor:
        page = await models(api, credentialId=made["id"], limit=200, order="asc", cursor=cursor)
        seen, cursor = seen + len(page["data"]), page["nextCursor"]
    assert seen == 1001
    asked = [r for r in llm.requests if r["path"] == "/v1/models"]
    assert all(r["headers"]["x-api-key"] == "sk-test" and "anthropic-version" in r["headers"] for r in asked)


async def test_an_endpoint_that_is_down_or_refuses_the_key_is_an_upstream_error(api, llm):
    down = await create(api, **{**custom(llm), "baseUrl": "http://127.0.0.1:9/v1"})
    error = error_of(await api.get("/v1/ai/models", headers=V), 502)
    assert error["code"] == "ai.gateway_unavailable" and error["reasonClass"] == "upstream"
    assert error["details"]["credentialId"] == down["id"] and "cannot be reached" in error["message"]

    await api.patch(f"{BASE}/{down['id']}", json={"status": "disabled"}, headers=V)
    refused = await create(api, **custom(llm, apiKey="sk-wrong"))
    error = error_of(await api.get("/v1/ai/models", headers=V), 502)
    assert error["code"] == "ai_credential.verification_failed" and error["details"]["credentialId"] == refused["id"]
    assert "sk-wrong" not in str(error)

    # One credential by id is asked even while disabled; a failing endpoint answers its status.
    await api.delete(f"{BASE}/{refused['id']}", headers=V)
    good = await create(api, **custom(llm))
    llm.models_status = 503
    error = error_of(await api.get("/v1/ai/models", params={"credentialId": good["id"]}, headers=V), 502)
    assert error["code"] == "ai.gateway_unavailable" and "503" in error["message"]
    llm.models_status = 429
    assert error_of(await api.get("/v1/ai/models", headers=V), 429)["code"] == "ai.rate_limited"
    llm.models_status = None
    assert [m["id"] for m in (await models(api))["data"]] == ["standin-model"]
    assert error_of(await api.get("/v1/ai/models", params={"credentialId": down["id"]}, headers=V), 502)


async def test_a_stored_url_the_server_cannot_call_is_unreachable_not_a_500(server, api):
    # The flat routes keep a URL the current ones refuse; asking it is then an upstream error.
    flat = await api.post(BASE, json={"label": "odd", "provider": "openai-compatible", "baseUrl": "https://\u0012x"})
    assert flat.status_code == 201, flat.text
    result = (await api.post(f"{BASE}/{flat.json()['id']}/test", headers=V)).json()
    assert result["ok"] is False and "cannot be reached" in result["error"]
    assert error_of(await api.get("/v1/ai/models", headers=V), 502)["code"] == "ai.gateway_unavailable"


async def test_a_key_sealed_under_another_server_key_is_reported_not_sent(server, api, llm):
    made = await create(api, **custom(llm))
    async with server.ctx.db.transaction() as s:
        row = await s.get(AiConnection, uuid.UUID(made["id"]))
        row.api_key_encrypted = SecretBox(b"another server key").seal("sk-test")
    llm.reset()
    result = (await api.post(f"{BASE}/{made['id']}/test", headers=V)).json()
    assert result["ok"] is False and "BCTRL_SECRET_KEY" in result["error"]
    error = error_of(await api.get("/v1/ai/models", headers=V), 409)
    assert error["code"] == "ai_credential.key_unreadable" and error["details"]["credentialId"] == made["id"]
    assert llm.requests == []  # nothing was sent with an unreadable key


async def test_a_create_retried_with_its_idempotency_key_keeps_one_credential(api, llm):
    headers = {**V, "Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    first = await api.post(BASE, json=custom(llm, name="once"), headers=headers)
    again = await api.post(BASE, json=custom(llm, name="once"), headers=headers)
    assert first.status_code == again.status_code == 201 and again.headers.get("Idempotency-Replayed") == "true"
    assert again.json() == first.json() and "sk-test" not in again.text
    assert [x["id"] for x in (await api.get(BASE, headers=V)).json()["data"]] == [first.json()["id"]]
    other = await api.post(BASE, json=custom(llm, name="different"), headers=headers)
    assert error_of(other, 409)["code"] == "idempotency.mismatch"

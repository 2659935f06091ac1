"""AI connections through the API, both shapes: the key is write-only and stored encrypted, the
connection belongs to its account, and `test` asks the real endpoint (here the stand-in)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.ai.models import AiConnection

SHAPES = ["/v1/ai-connections", "/v1/ai/credentials"]


@pytest.mark.parametrize("base", SHAPES)
async def test_create_read_update_delete_and_the_key_is_never_returned(server, api, llm, base):
    created = await api.post(
        base,
        json={
            "label": "local vLLM",
            "provider": "openai-compatible",
            "baseUrl": f"{llm.base}/v1/",
            "apiKey": "sk-test",
            "defaultModel": "qwen",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["hasStoredKey"] is True and body["baseUrl"] == f"{llm.base}/v1" and body["enabled"] is True
    assert "sk-test" not in created.text and "apiKey" not in body
    cid = body["id"]

    # At rest: encrypted, not the key and not containing it.
    async with server.ctx.db.transaction() as s:
        stored = (
            await s.execute(
                select(AiConnection.api_key_encrypted).where(AiConnection.id == __import__("uuid").UUID(cid))
            )
        ).scalar_one()
    assert stored and "sk-test" not in stored

    listed = (await api.get(base)).json()
    assert [c["id"] for c in listed["data"]] == [cid] and listed["aiConnections"] == listed["data"]
    assert "sk-test" not in (await api.get(f"{base}/{cid}")).text

    patched = await api.patch(f"{base}/{cid}", json={"label": "renamed", "enabled": False, "apiKey": None})
    assert patched.status_code == 200, patched.text
    assert patched.json()["label"] == "renamed" and patched.json()["enabled"] is False
    assert patched.json()["hasStoredKey"] is False and patched.json()["defaultModel"] == "qwen"

    assert (await api.delete(f"{base}/{cid}")).json() == {"id": cid, "deleted": True}
    assert (await api.get(f"{base}/{cid}")).status_code == 404


async def test_other_accounts_see_nothing(server, api, llm):
    cid = (
        await api.post("/v1/ai-connections", json={"label": "mine", "provider": "anthropic", "apiKey": "sk-ant"})
    ).json()["id"]
    async with await server.client("intruder") as other:
        for method, path in (
            ("get", f"/v1/ai-connections/{cid}"),
            ("delete", f"/v1/ai/credentials/{cid}"),
            ("post", f"/v1/ai-connections/{cid}/test"),
        ):
            response = await getattr(other, method)(path)
            assert response.status_code == 404 and response.json()["code"] == "ai_credential.not_found"
        assert (await other.get("/v1/ai-connections")).json()["data"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"label": "x", "provider": "openai-compatible"}, "baseUrl"),
        ({"label": "x", "provider": "google"}, "provider"),
        ({"label": "", "provider": "openai"}, "label"),
        ({"label": "x" * 201, "provider": "openai"}, "label"),
        ({"label": "x", "provider": "openai", "baseUrl": "ftp://models"}, "baseUrl"),
        ({"label": "x", "provider": "openai", "apiKey": ""}, "apiKey"),
        ({"label": "x", "provider": "openai", "secret": "y"}, "secret"),
    ],
)
async def test_bad_bodies_name_the_field(api, body, field):
    response = await api.post("/v1/ai-connections", json=body)
    assert response.status_code == 400 and response.json()["code"] == "request.invalid", response.text
    assert field in response.text


async def test_test_asks_the_endpoint_with_the_stored_key(api, llm):
    good = (
        await api.post(
            "/v1/ai-connections",
            json={"label": "ok", "provider": "openai-compatible", "baseUrl": f"{llm.base}/v1", "apiKey": "sk-test"},
        )
    ).json()
    result = (await api.post(f"/v1/ai-connections/{good['id']}/test")).json()
    assert result == {"ok": True, "message": f"{llm.base}/v1 answered", "provider": "openai-compatible"}
    assert llm.requests[-1]["headers"]["authorization"] == "Bearer sk-test"

    wrong = (
        await api.post(
            "/v1/ai/credentials",
            json={"label": "bad", "provider": "anthropic", "baseUrl": llm.base, "apiKey": "sk-wrong"},
        )
    ).json()
    result = (await api.post(f"/v1/ai/credentials/{wrong['id']}/test")).json()
    assert result["ok"] is False and "refused the credentials (401)" in result["message"]
    assert llm.requests[-1]["headers"]["x-api-key"] == "sk-wrong" and "sk-wrong" not in result["message"]

    down = (
        await api.post(
            "/v1/ai-connections",
            json={"label": "down", "provider": "openai-compatible", "baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k"},
        )
    ).json()
    result = (await api.post(f"/v1/ai-connections/{down['id']}/test")).json()
    assert result["ok"] is False and "cannot be reached" in result["message"]

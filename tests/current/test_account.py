"""The current generation's account surface, in-process on both backends: whoami, API keys (shown once,
stored hashed, revoked at once, never by themselves), expiry, usage, the account's branding and help."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import ApiKey
from tests.support import eventually

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


def bearer(secret: str) -> dict[str, str]:
    return {**CURRENT, "Authorization": f"Bearer {secret}"}


async def new_key(api, **body) -> dict:
    answer = await api.post("/v1/api-keys", json=body, headers=CURRENT)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_whoami_in_the_current_shape_and_the_earlier_one_unchanged(api):
    who = await api.get("/v1/auth/whoami", headers=CURRENT)
    assert who.status_code == 200
    body = who.json()
    assert body["object"] == "identity" and body["scope"] == "organization" and body["plan"] == "enterprise"
    assert body["effectiveScope"]["organizationId"] == body["organizationId"]
    assert body["effectiveScope"]["scope"] == "organization" and body["subaccountId"] is None
    default = (await api.get("/v1/spaces/default", headers=CURRENT)).json()
    assert body["defaultSpaceId"] == default["id"] == body["effectiveScope"]["defaultSpaceId"]

    seed = (await api.get("/v1/auth/whoami")).json()
    assert "object" not in seed and "effectiveScope" not in seed
    assert seed["keyId"] == body["keyId"] and seed["defaultSpaceId"] == default["id"]


async def test_a_key_is_shown_once_stored_hashed_and_works_at_once(server, api):
    made = await new_key(api, name="ci")
    secret, key = made["secret"], made["data"]
    assert secret.startswith("bctrl_") and key["keyPrefix"] == secret[:12]
    assert key["object"] == "api_key" and key["type"] == "organization" and key["name"] == "ci"
    assert key["scopes"] == [] and key["usageCount"] == 0 and key["lastUsedAt"] is None
    assert key["expiresAt"] is None and key["createdAt"].endswith("Z")

    who = await api.get("/v1/auth/whoami", headers=bearer(secret))
    assert who.status_code == 200 and who.json()["keyId"] == key["id"]

    listed = await api.get("/v1/api-keys", headers=CURRENT)
    assert listed.status_code == 200 and secret not in listed.text
    assert key["id"] in [k["id"] for k in listed.json()["data"]]

    async with server.ctx.db.read() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(key["id"])))).scalar_one()
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in row.key_hash


async def test_a_revoked_key_stops_at_once_and_a_key_cannot_revoke_itself(server, api):
    made = await new_key(api, name="to-revoke")
    secret, key_id = made["secret"], made["data"]["id"]
    assert (await api.get("/v1/auth/whoami", headers=bearer(secret))).status_code == 200

    itself = await api.delete(f"/v1/api-keys/{key_id}", headers=bearer(secret))
    assert itself.status_code == 403 and itself.json()["error"]["code"] == "auth.forbidden"
    assert itself.json()["error"]["details"]["reason"] == "self"
    assert (await api.get("/v1/auth/whoami", headers=bearer(secret))).status_code == 200

    # Another account cannot see it or revoke it.
    async with await server.client("intruder") as other:
        assert (await other.delete(f"/v1/api-keys/{key_id}", headers=CURRENT)).status_code == 404
        assert key_id not in [k["id"] for k in (await other.get("/v1/api-keys", headers=CURRENT)).json()["data"]]

    deleted = await api.delete(f"/v1/api-keys/{key_id}", headers=CURRENT)
    assert deleted.status_code == 200 and deleted.json() == {"id": key_id, "object": "api_key", "deleted": True}
    refused = await api.get("/v1/auth/whoami", headers=bearer(secret))
    assert refused.status_code == 401 and refused.json()["error"]["reasonClass"] == "unauthorized"
    assert key_id not in [k["id"] for k in (await api.get("/v1/api-keys", headers=CURRENT)).json()["data"]]
    again = await api.delete(f"/v1/api-keys/{key_id}", headers=CURRENT)
    assert again.status_code == 404 and again.json()["error"]["code"] == "api_key.not_found"
    assert (await api.delete("/v1/api-keys/not-an-id", headers=CURRENT)).status_code == 404


async def test_the_bootstrap_key_is_retired_by_its_variable_not_the_api(make_server):
    async with make_server("sqlite", api_key="a-human-chosen-bootstrap-key") as srv:
        async with srv.anonymous(headers=bearer("a-human-chosen-bootstrap-key")) as boot:
            boot_id = (await boot.get("/v1/auth/whoami", headers=CURRENT)).json()["keyId"]
            other = await new_key(boot, name="second")
            refused = await boot.delete(f"/v1/api-keys/{boot_id}", headers=bearer(other["secret"]))
            assert refused.status_code == 403 and refused.json()["error"]["details"]["reason"] == "bootstrap"


async def test_a_key_cannot_take_the_bootstrap_keys_name_to_escape_revocation(api):
    # Found in review: the bootstrap key was told apart by its name, which a key create let anyone choose.
    async def key_ids() -> set[str]:
        return {k["id"] for k in (await api.get("/v1/api-keys", headers=CURRENT)).json()["data"]}

    before = await key_ids()
    forged = await api.post("/v1/api-keys", json={"name": "bootstrap (BCTRL_API_KEY)"}, headers=CURRENT)
    assert forged.status_code == 400, forged.text
    assert forged.json()["error"]["details"]["fields"][0]["field"] == "name"
    assert await key_ids() == before  # nothing kept

    made = await new_key(api, name="bootstrap")  # a look-alike name is an ordinary key: revocable
    gone = await api.delete(f"/v1/api-keys/{made['data']['id']}", headers=CURRENT)
    assert gone.status_code == 200, gone.text
    assert (await api.get("/v1/auth/whoami", headers=bearer(made["secret"]))).status_code == 401


async def test_usage_and_last_use_are_counted(api):
    made = await new_key(api)
    for _ in range(3):
        assert (await api.get("/v1/auth/whoami", headers=bearer(made["secret"]))).status_code == 200
    listed = (await api.get("/v1/api-keys", headers=CURRENT)).json()["data"]
    mine = next(k for k in listed if k["id"] == made["data"]["id"])
    assert mine["usageCount"] == 3 and mine["lastUsedAt"] >= mine["createdAt"]


async def test_an_expired_key_is_refused(api):
    past = await api.post("/v1/api-keys", json={"expiresAt": "2020-01-01T00:00:00Z"}, headers=CURRENT)
    assert past.status_code == 400 and past.json()["error"]["code"] == "request.invalid"
    naive = await api.post("/v1/api-keys", json={"expiresAt": "2099-01-01T00:00:00"}, headers=CURRENT)
    assert naive.status_code == 400

    soon = datetime.now(UTC) + timedelta(seconds=2)
    made = await new_key(api, expiresAt=soon.isoformat())
    assert made["data"]["expiresAt"].startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    assert (await api.get("/v1/auth/whoami", headers=bearer(made["secret"]))).status_code == 200

    async def refused():
        answer = await api.get("/v1/auth/whoami", headers=bearer(made["secret"]))
        return answer.status_code == 401 and answer.json()["error"]["code"] == "auth.expired"

    await eventually(refused, timeout=10)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # Scopes and subaccount keys are offered (tests/tenants); these are what they refuse.
        ({"scopes": ["browsers:delete"]}, "request.invalid"),
        ({"type": "subaccount"}, "request.invalid"),
        ({"subaccountId": "sub_1"}, "api_keys.subaccount_access_denied"),
        ({"type": "agent", "agent": {"name": "bot"}}, "api_key.type_unsupported"),
        ({"name": ""}, "request.invalid"),
        ({"name": "x", "role": "admin"}, "request.invalid"),
    ],
)
async def test_what_a_key_cannot_be_is_refused(api, body, code):
    before = len((await api.get("/v1/api-keys", headers=CURRENT)).json()["data"])
    answer = await api.post("/v1/api-keys", json=body, headers=CURRENT)
    status = 403 if code == "api_keys.subaccount_access_denied" else 400
    assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
    assert len((await api.get("/v1/api-keys", headers=CURRENT)).json()["data"]) == before


async def test_an_idempotent_replay_issues_a_fresh_secret_for_the_same_key(server, api):
    headers = {**CURRENT, "Idempotency-Key": uuid.uuid4().hex}
    first = await api.post("/v1/api-keys", json={"name": "retried"}, headers=headers)
    second = await api.post("/v1/api-keys", json={"name": "retried"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert second.json()["secret"] != first.json()["secret"]
    assert (await api.get("/v1/auth/whoami", headers=bearer(first.json()["secret"]))).status_code == 401
    assert (await api.get("/v1/auth/whoami", headers=bearer(second.json()["secret"]))).status_code == 200
    # No secret is kept for the replay: the stored answer has none.
    async with server.ctx.db.read() as s:
        from app.core.idempotency import IdempotencyRecord

        stored = (await s.execute(select(IdempotencyRecord.response))).scalars().all()
    assert all(first.json()["secret"] not in str(r) and second.json()["secret"] not in str(r) for r in stored)
    # Once that key is revoked, a replay cannot bring it back.
    assert (await api.delete(f"/v1/api-keys/{first.json()['data']['id']}", headers=CURRENT)).status_code == 200
    third = await api.post("/v1/api-keys", json={"name": "retried"}, headers=headers)
    assert third.status_code == 409 and third.json()["error"]["code"] == "resource.conflict"
    assert (await api.get("/v1/auth/whoami", headers=bearer(second.json()["secret"]))).status_code == 401


async def test_key_lists_filter_and_page(api):
    ids = [(await new_key(api, name=f"k{i}"))["data"]["id"] for i in range(3)]
    page = (await api.get("/v1/api-keys", params={"limit": 2}, headers=CURRENT)).json()
    assert len(page["data"]) == 2 and page["hasMore"] is True and page["nextCursor"]
    assert [k["id"] for k in page["data"]] == list(reversed(ids))[:2]
    asc = (await api.get("/v1/api-keys", params={"order": "asc"}, headers=CURRENT)).json()["data"]
    assert [k["id"] for k in asc if k["id"] in ids] == ids
    assert (await api.get("/v1/api-keys", params={"type": "agent"}, headers=CURRENT)).json()["data"] == []
    sub = await api.get("/v1/api-keys", params={"subaccountId": "sub_1"}, headers=CURRENT)
    assert sub.status_code == 404 and sub.json()["error"]["code"] == "subaccount.not_found"


async def test_account_branding_merge_patch_and_dry_run(api):
    account = await api.get("/v1/account", headers=CURRENT)
    assert account.status_code == 200
    body = account.json()
    assert body["object"] == "account" and body["branding"]["config"]["accent"] is None
    resolved = body["branding"]["resolved"]
    assert resolved["productName"] == "BCTRL" and resolved["showPoweredBy"] is True
    assert resolved["tokens"]["accent"] == "#2563eb"

    dry = await api.patch("/v1/account", params={"dryRun": "true"}, json={"branding": {"accent": "#FF0000"}})
    assert dry.status_code == 200 and dry.json()["branding"]["resolved"]["tokens"]["accent"] == "#ff0000"
    assert (await api.get("/v1/account")).json()["branding"]["config"]["accent"] is None  # not stored

    set_ = await api.patch("/v1/account", json={"branding": {"accent": "#ff0000", "productName": "Acme"}})
    assert set_.status_code == 200
    tokens = set_.json()["branding"]["resolved"]["tokens"]
    assert tokens["accent"] == "#ff0000" and tokens["accentSoft"] == "#ffd9d9"
    assert set_.json()["branding"]["resolved"]["productName"] == "Acme"
    assert set_.json()["updatedAt"] >= body["updatedAt"]

    removed = await api.patch("/v1/account", json={"branding": {"productName": None}})
    assert removed.json()["branding"]["config"] == {
        "accent": "#ff0000",
        "logo": None,
        "productName": None,
        "showPoweredBy": None,
    }
    reset = await api.patch("/v1/account", json={"branding": None})
    assert reset.json()["branding"]["config"]["accent"] is None

    for bad in ({"branding": {"accent": "red"}}, {"branding": {"logo": "http://x"}}, {"plan": "free"}):
        answer = await api.patch("/v1/account", json=bad)
        assert answer.status_code == 400, bad


async def test_help_lists_the_operations_served(api):
    overview = await api.get("/v1/help", headers=CURRENT)
    assert overview.status_code == 200 and overview.json()["type"] == "overview"
    topics = {t["topic"]: t for t in overview.json()["topics"]}
    assert topics["spaces.create"]["path"] == "/v1/spaces" and topics["spaces.create"]["method"] == "POST"
    assert topics["api_keys.delete"]["path"] == "/v1/api-keys/{key_id}"
    assert "browsers.stop" in topics and "auth.whoami" in topics

    one = await api.get("/v1/help", params={"topic": "browsers.create"})
    assert one.status_code == 200 and one.json()["type"] == "topic"
    assert one.json()["api"] == {"method": "POST", "path": "/v1/browsers"}
    assert one.json()["sdk"][0]["method"] == "client.browsers.create"
    unknown = await api.get("/v1/help", params={"topic": "teleport"}, headers=CURRENT)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "help.not_found"
    # The operations the MCP server offers as tools say so, with the tool's name.
    assert one.json()["mcp"] == {
        "toolName": "bctrl_browsers_create",
        "operationResource": "bctrl://help/browsers.create",
        "schemaResources": ["bctrl://docs/openapi.json"],
    }
    assert "mcp" in topics["browsers.create"]["audiences"]
    assert "mcp" not in topics["api_keys.delete"]["audiences"]  # keys are managed by people, not tools
    for_mcp = {t["topic"] for t in (await api.get("/v1/help", params={"audience": "mcp"})).json()["topics"]}
    assert "browsers.create" in for_mcp and "api_keys.delete" not in for_mcp
    not_a_tool = await api.get("/v1/help", params={"topic": "api_keys.delete", "audience": "mcp"}, headers=CURRENT)
    assert not_a_tool.status_code == 404 and not_a_tool.json()["error"]["code"] == "help.not_found"

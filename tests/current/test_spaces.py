"""`/v1/spaces` in the current generation (BCTRL-Version 2026-10-03), in-process on both backends: the
shape, names unique per account, the environment's AI credential list, settings refused by name, the
default space, deletion with the browsers inside, and the `BCTRL-Space` scope selector."""

from __future__ import annotations

import uuid

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create(api, **body):
    answer = await api.post("/v1/spaces", json=body, headers=CURRENT)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def space_count(api) -> int:
    return len((await api.get("/v1/spaces", params={"limit": 200}, headers=CURRENT)).json()["data"])


async def test_create_get_list_update_delete_in_the_current_shape(api):
    made = await create(api, name="invoices")
    assert made["object"] == "space" and made["status"] == "active" and made["name"] == "invoices"
    assert made["region"] == "local" and made["isDefault"] is False and made["capabilityScopes"] == []
    assert made["expireAfterIdleDays"] == 0 and made["environment"] == {"ai": None}
    assert made["deletionError"] is None and made["createdAt"].endswith("Z")
    assert "mounts" not in made and "metadata" not in made  # the earlier shape's fields

    got = await api.get(f"/v1/spaces/{made['id']}", headers=CURRENT)
    assert got.status_code == 200 and got.json() == made

    listed = (await api.get("/v1/spaces", headers=CURRENT)).json()
    assert set(listed) == {"data", "hasMore", "nextCursor"} and listed["hasMore"] is False
    assert made["id"] in [s["id"] for s in listed["data"]]

    renamed = await api.patch(f"/v1/spaces/{made['id']}", json={"name": "receipts"}, headers=CURRENT)
    assert renamed.status_code == 200 and renamed.json()["name"] == "receipts"
    assert renamed.json()["updatedAt"] >= made["updatedAt"]

    deleted = await api.delete(f"/v1/spaces/{made['id']}", headers=CURRENT)
    assert deleted.status_code == 200
    assert deleted.json()["id"] == made["id"] and deleted.json()["status"] == "deleted"
    gone = await api.get(f"/v1/spaces/{made['id']}", headers=CURRENT)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "space.not_found"


async def test_without_the_header_the_same_paths_keep_the_earlier_shape(api):
    made = await create(api, name="shared-path")
    seed = await api.get(f"/v1/spaces/{made['id']}")
    assert seed.status_code == 200 and seed.json()["mounts"] == {} and "object" not in seed.json()
    listed = (await api.get("/v1/spaces")).json()
    assert listed["spaces"] == listed["data"]
    # The seed delete answers its own shape too.
    assert (await api.delete(f"/v1/spaces/{made['id']}")).json() == {"id": made["id"], "deleted": True}


async def test_a_space_without_a_name_is_named_after_its_id(api):
    made = await create(api)
    assert made["name"] == f"space-{uuid.UUID(made['id']).hex[-8:]}"


async def test_names_are_unique_per_account_on_create_and_rename(server, api):
    first = await create(api, name="taken")
    other = await create(api, name="free")
    before = await space_count(api)

    again = await api.post("/v1/spaces", json={"name": "taken"}, headers=CURRENT)
    assert again.status_code == 409 and again.json()["error"]["code"] == "space.name_conflict"
    assert again.json()["error"]["reasonClass"] == "conflict"
    assert await space_count(api) == before  # nothing half-made

    rename = await api.patch(f"/v1/spaces/{other['id']}", json={"name": "taken"}, headers=CURRENT)
    assert rename.status_code == 409 and rename.json()["error"]["code"] == "space.name_conflict"
    assert (await api.get(f"/v1/spaces/{other['id']}", headers=CURRENT)).json()["name"] == "free"
    # Renaming a space to its own name is not a conflict.
    same = await api.patch(f"/v1/spaces/{first['id']}", json={"name": "taken"}, headers=CURRENT)
    assert same.status_code == 200

    # Another account may use the name.
    async with await server.client("neighbour") as neighbour:
        assert (await neighbour.post("/v1/spaces", json={"name": "taken"}, headers=CURRENT)).status_code == 201


async def test_list_orders_and_pages(api):
    ids = [(await create(api, name=unique("page")))["id"] for _ in range(3)]
    newest = (await api.get("/v1/spaces", headers=CURRENT)).json()["data"]
    mine = [s["id"] for s in newest if s["id"] in ids]
    assert mine == list(reversed(ids))  # newest first by default
    oldest = (await api.get("/v1/spaces", params={"order": "asc"}, headers=CURRENT)).json()["data"]
    assert [s["id"] for s in oldest if s["id"] in ids] == ids

    seen, cursor = [], None
    while True:
        params = {"limit": 2, "order": "asc", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/spaces", params=params, headers=CURRENT)).json()
        assert len(page["data"]) <= 2 and page["hasMore"] is (page["nextCursor"] is not None)
        seen += [s["id"] for s in page["data"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert [i for i in seen if i in ids] == ids and len(seen) == len(set(seen))
    bad = await api.get("/v1/spaces", params={"order": "sideways"}, headers=CURRENT)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "request.invalid"


async def test_the_environment_s_ai_credentials_are_the_allow_list_invocations_honour(api):
    made = await api.post(
        "/v1/ai-connections",
        json={"label": "local", "provider": "openai-compatible", "baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k"},
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]

    space = await create(api, name=unique("ai"), environment={"ai": {"credentialIds": [cid.upper()]}})
    assert space["environment"]["ai"] == {"credentialIds": [cid]}  # stored as the canonical id
    seed = (await api.get(f"/v1/spaces/{space['id']}")).json()
    assert seed["mounts"]["ai"]["allowConnections"] == [cid]  # what the invocation service reads

    unknown = str(uuid.uuid4())
    before = await space_count(api)
    missing = await api.post(
        "/v1/spaces", json={"name": unique("ai"), "environment": {"ai": {"credentialIds": [unknown]}}}, headers=CURRENT
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ai_credential.not_found"
    assert await space_count(api) == before

    # A patch that leaves out `ai` keeps it; `ai: null` clears it.
    kept = await api.patch(f"/v1/spaces/{space['id']}", json={"environment": {}}, headers=CURRENT)
    assert kept.json()["environment"]["ai"] == {"credentialIds": [cid]}
    cleared = await api.patch(f"/v1/spaces/{space['id']}", json={"environment": {"ai": None}}, headers=CURRENT)
    assert cleared.status_code == 200 and cleared.json()["environment"]["ai"] is None
    assert "allowConnections" not in ((await api.get(f"/v1/spaces/{space['id']}")).json()["mounts"].get("ai") or {})


async def test_the_earlier_generations_mounts_survive_a_current_patch(api):
    seed = await api.post(
        "/v1/spaces",
        json={
            "name": unique("mixed"),
            "mounts": {"vault": {"allow": ["db/*"]}, "ai": {"defaults": {"stagehand": {"connection": "x"}}}},
        },
    )
    sid = seed.json()["id"]
    await api.patch(f"/v1/spaces/{sid}", json={"name": unique("renamed"), "environment": {"ai": None}}, headers=CURRENT)
    mounts = (await api.get(f"/v1/spaces/{sid}")).json()["mounts"]
    assert mounts["vault"]["allow"] == ["db/*"] and mounts["ai"]["defaults"]["stagehand"]["connection"] == "x"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"capabilityScopes": ["browsers:read"]}, "space.option_unsupported", "capabilityScopes"),
        ({"expireAfterIdleDays": 7}, "space.option_unsupported", "expireAfterIdleDays"),
        ({"region": "us-east-1"}, "space.region_invalid", "region"),
        ({"environment": {"network": {"allow": ["example.com"]}}}, "space.option_unsupported", "environment.network"),
        ({"environment": {"secrets": {"deny": ["prod/*"]}}}, "space.option_unsupported", "environment.secrets"),
        ({"environment": {"storage": {"namespace": "x"}}}, "space.option_unsupported", "environment.storage"),
        ({"environment": {"ai": {"default": "gpt-4o"}}}, "space.option_unsupported", "environment.ai.default"),
        ({"name": ""}, "request.invalid", "name"),
        ({"name": "x", "mounts": {}}, "request.invalid", "mounts"),
        ({"expireAfterIdleDays": "0"}, "request.invalid", "expireAfterIdleDays"),
    ],
)
async def test_settings_this_server_cannot_honour_are_refused_by_name(api, body, code, field):
    before = await space_count(api)
    answer = await api.post("/v1/spaces", json=body, headers=CURRENT)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["reasonClass"] == "invalid_input"
    assert field in [f["field"] for f in error["details"]["fields"]]
    assert await space_count(api) == before
    # An update refuses the same (region is fixed at creation).
    if "region" not in body:
        space = await create(api, name=unique("refuse"))
        patched = await api.patch(f"/v1/spaces/{space['id']}", json=body, headers=CURRENT)
        assert patched.status_code == 400 and patched.json()["error"]["code"] == code


async def test_what_this_server_does_is_accepted(api):
    made = await create(
        api,
        name=unique("ok"),
        region="local",
        capabilityScopes=[],
        expireAfterIdleDays=0,
        environment={"network": {"allow": [], "deny": []}, "secrets": {}},
    )
    assert made["region"] == "local" and made["capabilityScopes"] == []


async def test_the_default_space(api):
    default = await api.get("/v1/spaces/default", headers=CURRENT)
    assert default.status_code == 200 and default.json()["isDefault"] is True
    again = await api.get(f"/v1/spaces/{default.json()['id']}", headers=CURRENT)
    assert again.json() == default.json()
    refused = await api.delete("/v1/spaces/default", headers=CURRENT)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "space.default_not_deletable"
    assert (await api.get("/v1/spaces/default", headers=CURRENT)).json()["id"] == default.json()["id"]


async def test_unknown_and_foreign_spaces_are_404(server, api):
    mine = await create(api, name=unique("mine"))
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        answer = await getattr(api, method)(f"/v1/spaces/{uuid.uuid4()}", headers=CURRENT, **kwargs)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "space.not_found"
    async with await server.client("intruder") as other:
        for method in ("get", "patch", "delete"):
            kwargs = {"json": {"name": "x"}} if method == "patch" else {}
            answer = await getattr(other, method)(f"/v1/spaces/{mine['id']}", headers=CURRENT, **kwargs)
            assert answer.status_code == 404
    assert (await api.get(f"/v1/spaces/{mine['id']}", headers=CURRENT)).json()["name"] == mine["name"]


async def test_idempotent_create_replays_the_space(api):
    headers = {**CURRENT, "Idempotency-Key": unique("idem")}
    first = await api.post("/v1/spaces", json={"name": unique("idem")}, headers=headers)
    second = await api.post("/v1/spaces", json=first.request.read() and {"name": first.json()["name"]}, headers=headers)
    assert second.status_code == 201 and second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotency-Replayed"] == "true"


async def test_the_space_header_is_a_scope_selector(api):
    here = await create(api, name=unique("here"))
    nowhere = {**CURRENT, "BCTRL-Space": str(uuid.uuid4())}
    for path in ("/v1/spaces", "/v1/api-keys", "/v1/auth/whoami", "/v1/browsers", "/v1/runs"):
        answer = await api.get(path, headers=nowhere)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "space.not_found"
    scoped = {**CURRENT, "BCTRL-Space": here["id"]}
    assert here["id"] in [s["id"] for s in (await api.get("/v1/spaces", headers=scoped)).json()["data"]]
    who = (await api.get("/v1/auth/whoami", headers=scoped)).json()
    assert who["effectiveScope"]["defaultSpaceId"] == here["id"] and who["defaultSpaceId"] != here["id"]
    by_default = (await api.get("/v1/auth/whoami", headers={**CURRENT, "BCTRL-Space": "default"})).json()
    assert by_default["effectiveScope"]["defaultSpaceId"] == by_default["defaultSpaceId"]


async def test_deleting_a_space_stops_and_deletes_its_browsers(api):
    space = await create(api, name=unique("busy"))
    scoped = {**CURRENT, "BCTRL-Space": space["id"]}
    browser = await api.post("/v1/browsers", json={"name": unique("b")}, params={"wait": 30}, headers=scoped)
    try:
        assert browser.status_code == 201, browser.text
        assert browser.json()["status"] == "running" and browser.json()["spaceId"] == space["id"]
        # The header scopes the browsers list: listed in its space, not in the default one.
        listed = (await api.get("/v1/browsers", headers=scoped)).json()["data"]
        assert [b["id"] for b in listed] == [browser.json()["id"]]
        elsewhere = (await api.get("/v1/browsers", headers={**CURRENT, "BCTRL-Space": "default"})).json()["data"]
        assert browser.json()["id"] not in [b["id"] for b in elsewhere]

        deleted = await api.delete(f"/v1/spaces/{space['id']}", headers=CURRENT)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == "deleted"
        gone = await api.get(f"/v1/browsers/{browser.json()['id']}", headers=CURRENT)
        assert gone.status_code == 404
        seed = await api.get(f"/v1/runtimes/{browser.json()['id']}")
        assert seed.status_code == 404
    finally:
        if browser.status_code == 201:
            await api.delete(f"/v1/browsers/{browser.json()['id']}", headers=CURRENT)

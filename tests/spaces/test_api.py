from __future__ import annotations

import uuid

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def test_create_get_list_update_delete(api):
    created = await api.post(
        "/v1/spaces",
        json={
            "name": "invoices",
            "region": "eu-west",
            "metadata": {"team": "ops"},
            "mounts": {"ai": {"allowConnections": ["anthropic-prod"]}},
        },
    )
    assert created.status_code == 201
    space = created.json()
    assert space["name"] == "invoices" and space["region"] == "eu-west"
    assert space["metadata"] == {"team": "ops"}
    assert space["mounts"]["ai"]["allowConnections"] == ["anthropic-prod"]
    assert uuid.UUID(space["id"]).version == 7
    assert space["createdAt"].endswith("Z") and len(space["createdAt"]) == 24

    got = (await api.get(f"/v1/spaces/{space['id']}")).json()
    assert got == space

    listed = (await api.get("/v1/spaces")).json()
    assert [s["id"] for s in listed["data"]] == [space["id"]]
    assert listed["spaces"] == listed["data"] and listed["nextCursor"] is None

    patched = await api.patch(f"/v1/spaces/{space['id']}", json={"name": "renamed", "metadata": None})
    assert patched.status_code == 200
    assert patched.json()["name"] == "renamed" and patched.json()["metadata"] is None
    assert patched.json()["region"] == "eu-west"

    deleted = await api.delete(f"/v1/spaces/{space['id']}")
    assert deleted.json() == {"id": space["id"], "deleted": True}
    gone = await api.get(f"/v1/spaces/{space['id']}")
    assert gone.status_code == 404 and gone.json()["code"] == "space.not_found"


async def test_list_pages_with_cursor(api):
    ids = [(await api.post("/v1/spaces", json={"name": f"s{i}"})).json()["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = (await api.get("/v1/spaces", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["data"]) <= 2
        seen += [s["id"] for s in page["data"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == ids


async def test_other_accounts_spaces_are_invisible(server, api):
    mine = (await api.post("/v1/spaces", json={"name": "mine"})).json()
    async with await server.client("intruder") as other:
        assert (await other.get(f"/v1/spaces/{mine['id']}")).status_code == 404
        assert (await other.patch(f"/v1/spaces/{mine['id']}", json={"name": "x"})).status_code == 404
        assert (await other.delete(f"/v1/spaces/{mine['id']}")).status_code == 404
        assert (await other.get("/v1/spaces")).json()["data"] == []
    assert (await api.get(f"/v1/spaces/{mine['id']}")).json()["name"] == "mine"


async def test_default_space_is_created_once(api):
    first = (await api.get("/v1/spaces/default")).json()
    second = (await api.get("/v1/spaces/default")).json()
    assert first["id"] == second["id"] and first["isDefault"] is True
    whoami = (await api.get("/v1/auth/whoami")).json()
    assert whoami["defaultSpaceId"] == first["id"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"name": 12}, "name"),
        ({"name": "ok", "metadata": "not an object"}, "metadata"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        (
            {"name": "ok", "mounts": {"ai": {"defaults": {"stagehand": {"model": "m"}}}}},
            "mounts.ai.defaults.stagehand.connection",
        ),
    ],
)
async def test_bad_create_bodies_are_400_naming_the_field(api, body, field):
    response = await api.post("/v1/spaces", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == "request.invalid"
    assert field in [f["field"] for f in payload["details"]["fields"]]
    assert (await api.get("/v1/spaces")).json()["data"] == []


async def test_malformed_json_is_400(api):
    response = await api.post("/v1/spaces", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "request.invalid"


@pytest.mark.parametrize("space_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
async def test_unknown_or_malformed_ids_are_404(api, space_id):
    response = await api.get(f"/v1/spaces/{space_id}")
    assert response.status_code == 404 and response.json()["code"] == "space.not_found"


async def test_deleting_a_space_removes_its_file_bytes(server, api):
    space = (await api.post("/v1/spaces", json={"name": "with-files"})).json()
    uploaded = await api.post(
        f"/v1/spaces/{space['id']}/storage/files",
        files={"file": ("notes.txt", b"remember me", "text/plain")},
        data={"path": "notes.txt"},
    )
    assert uploaded.status_code == 201, uploaded.text
    objects = server.settings.objects_dir

    def stored() -> list:
        return [p for p in objects.rglob("*") if p.is_file() and p.read_bytes() == b"remember me"]

    assert len(stored()) == 1
    assert (await api.delete(f"/v1/spaces/{space['id']}")).status_code == 200
    assert stored() == []

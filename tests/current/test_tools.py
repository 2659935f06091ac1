"""Tools in process, over both backends: the built-in catalogue offered here (and not the refused
built-ins), custom webhook tools from create to delete (revisions, the sealed signing secret, names
per space), `resolve` for the task runner, and each bad input's documented code with nothing made."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.core.errors import DomainError
from app.tools import service
from app.tools.catalog import BUILTIN, REFUSED
from app.tools.models import CustomTool
from tests.support import error_of

V = {"BCTRL-Version": "2026-10-03"}
SCHEMA_IN = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
SCHEMA_OUT = {"type": "object", "properties": {"price": {"type": "number"}}}


def webhook(**more):
    return {
        "name": "price_lookup",
        "description": "Look a price up",
        "implementation": {"type": "webhook", "url": "http://127.0.0.1:9/price", "timeoutMs": 5000},
        "inputSchema": SCHEMA_IN,
        "outputSchema": SCHEMA_OUT,
        **more,
    }


async def count_tools(server) -> int:
    async with server.ctx.db.read() as s:
        return (await s.execute(select(func.count()).select_from(CustomTool))).scalar_one()


async def all_tools(api, query: str = "") -> list[dict]:
    found, cursor = [], None
    while True:
        page = (await api.get(f"/v1/tools?limit=5{query}" + (f"&cursor={cursor}" if cursor else ""), headers=V)).json()
        found += page["data"]
        if not page["hasMore"]:
            return found
        cursor = page["nextCursor"]


async def test_the_catalogue_lists_what_is_offered(api):
    tools = await all_tools(api)
    names = [t["name"] for t in tools]
    assert set(names) == set(BUILTIN) and len(names) == len(set(names))
    assert not set(names) & set(REFUSED)
    act = next(t for t in tools if t["name"] == "stagehand.act")
    assert act["id"] == "stagehand.act" and act["implementation"] == {"type": "builtin", "name": "stagehand.act"}
    assert act["inputSchema"]["required"] == ["instruction"] and act["object"] == "tool" and act["spaceId"] is None
    got = await api.get("/v1/tools/human.request", headers=V)
    assert got.json()["name"] == "human.request"
    assert error_of(await api.get("/v1/tools/captcha.solve", headers=V), 400)["code"] == "tool.unavailable"
    assert error_of(await api.get("/v1/tools/nothing", headers=V), 404)["code"] == "tool.not_found"
    changed = await api.patch("/v1/tools/stagehand.act", json={"currentRevisionId": "x"}, headers=V)
    assert error_of(changed, 403)["code"] == "tool.builtin_immutable"
    assert error_of(await api.delete("/v1/tools/stagehand.act", headers=V), 403)["code"] == "tool.builtin_immutable"


async def test_a_webhook_tool_from_create_to_delete(server, api):
    made = await api.post("/v1/tools", json=webhook(), headers=V)
    assert made.status_code == 201, made.text
    tool = made.json()
    assert (tool["object"], tool["name"], tool["description"]) == ("tool", "price_lookup", "Look a price up")
    assert tool["implementation"] == {
        "type": "webhook",
        "url": "http://127.0.0.1:9/price",
        "timeoutMs": 5000,
        "authSecret": None,
    }
    assert tool["inputSchema"] == SCHEMA_IN and tool["runtimeTypes"] == ["browser"] and tool["currentRevisionId"]
    # The generated signing secret is kept sealed and answered nowhere.
    async with server.ctx.db.read() as s:
        row = await s.get(CustomTool, uuid.UUID(tool["id"]))
    secret = service.signing_secret(server.ctx, row)
    assert secret.startswith("whsec_") and secret not in row.signing_secret_sealed and secret not in made.text

    assert (await api.get(f"/v1/tools/{tool['id']}", headers=V)).json() == tool
    assert (await api.get("/v1/tools/price_lookup?spaceId=default", headers=V)).json()["id"] == tool["id"]
    assert tool["id"] in [t["id"] for t in await all_tools(api, "&spaceId=default")]
    taken = await api.post("/v1/tools", json=webhook(), headers=V)
    assert error_of(taken, 409)["code"] == "tool.name_conflict"
    # Another space may use the name.
    lab = (await api.post("/v1/spaces", json={"name": "lab"}, headers=V)).json()
    elsewhere = await api.post("/v1/tools", json=webhook(spaceId=lab["id"]), headers=V)
    assert elsewhere.status_code == 201 and elsewhere.json()["spaceId"] == lab["id"]
    assert tool["id"] not in [t["id"] for t in await all_tools(api, f"&spaceId={lab['id']}")]

    stale = tool["currentRevisionId"]
    updated = await api.patch(
        f"/v1/tools/{tool['id']}",
        json={
            "currentRevisionId": stale,
            "description": "Prices",
            "implementation": {
                "type": "webhook",
                "url": "https://127.0.0.1:8443/p",
                "authSecret": "secret:hooks/crm#value",
            },
        },
        headers=V,
    )
    assert updated.status_code == 200, updated.text
    now = updated.json()
    assert now["description"] == "Prices" and now["currentRevisionId"] != stale
    assert now["implementation"] == {
        "type": "webhook",
        "url": "https://127.0.0.1:8443/p",
        "timeoutMs": 5000,
        "authSecret": "secret:hooks/crm#value",
    }
    conflict = await api.patch(
        f"/v1/tools/{tool['id']}", json={"currentRevisionId": stale, "description": "x"}, headers=V
    )
    assert error_of(conflict, 409)["code"] == "tool.revision_conflict"

    resolved = await service.resolve(server.ctx, row.account_id, "price_lookup", space_id=row.space_id)
    assert (resolved.kind, resolved.name, resolved.custom.id, resolved.needs_browser) == (
        "webhook",
        "price_lookup",
        row.id,
        False,
    )
    builtin = await service.resolve(server.ctx, row.account_id, "stagehand.extract")
    assert (builtin.kind, builtin.needs_browser, builtin.custom) == ("builtin", True, None)
    with pytest.raises(DomainError) as ambiguous:
        await service.resolve(server.ctx, row.account_id, "price_lookup")
    assert ambiguous.value.code == "resource.name_ambiguous"

    gone = await api.delete(f"/v1/tools/{tool['id']}", headers=V)
    assert gone.json() == {"id": tool["id"], "object": "tool", "deleted": True}
    assert error_of(await api.get(f"/v1/tools/{tool['id']}", headers=V), 404)["code"] == "tool.not_found"
    with pytest.raises(DomainError) as missing:
        await service.resolve(server.ctx, row.account_id, tool["id"])
    assert missing.value.code == "tool.not_found"
    again = await api.post("/v1/tools", json=webhook(outputSchema={"type": "array"}), headers=V)
    assert again.status_code == 201 and again.json()["id"] != tool["id"]  # an answer may be any JSON


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"implementation": {"type": "code", "source": "x", "language": "typescript"}},
            400,
            "tool.implementation_unsupported",
        ),
        ({"implementation": {"type": "workflow", "sourceTurnId": "t"}}, 400, "tool.implementation_unsupported"),
        ({"runtimeTypes": ["desktop"]}, 400, "tool.runtime_type_unsupported"),
        ({"inputSchema": {"type": "nonsense"}}, 400, "tool.schema_invalid"),
        ({"inputSchema": {"type": "array"}}, 400, "tool.schema_invalid"),
        ({"outputSchema": {"properties": 3}}, 400, "tool.schema_invalid"),
        ({"name": "stagehand.act"}, 400, "tool.name_invalid"),
        ({"name": "has space"}, 400, "tool.name_invalid"),
        ({"name": "1abc"}, 400, "tool.name_invalid"),
        ({"implementation": {"type": "webhook", "url": "ftp://127.0.0.1/x"}}, 400, "request.invalid"),
        ({"implementation": {"type": "webhook", "url": "not a url"}}, 400, "request.invalid"),
        ({"implementation": {"type": "webhook", "url": "http://u:p@127.0.0.1/x"}}, 400, "request.invalid"),
        ({"implementation": {"type": "webhook", "url": "http://127.0.0.1/x", "timeoutMs": 0}}, 400, "request.invalid"),
        (
            {"implementation": {"type": "webhook", "url": "http://127.0.0.1/x", "timeoutMs": 10**7}},
            400,
            "request.invalid",
        ),
        (
            {"implementation": {"type": "webhook", "url": "http://127.0.0.1/x", "authSecret": "plain"}},
            400,
            "request.invalid",
        ),
        (
            {"implementation": {"type": "webhook", "url": "http://127.0.0.1/x", "authSecret": "secret:a/../b"}},
            400,
            "request.invalid",
        ),
        ({"implementation": {"type": "webhook"}}, 400, "request.invalid"),
        ({"inputSchema": None}, 400, "request.invalid"),
        ({"implementation": {"type": "webhook", "url": "http://127.0.0.1:70000/x"}}, 400, "request.invalid"),
        ({"implementation": {"type": "webhook", "url": "http://[::1]/x"}}, 400, "request.invalid"),
        (
            {"implementation": {"type": "webhook", "url": "http://127.0.0.1/x", "authSecret": "secret:.hidden/x"}},
            400,
            "request.invalid",
        ),
        ({"spaceId": str(uuid.uuid4())}, 404, "space.not_found"),
        ({"extra": 1}, 400, "request.invalid"),
    ],
)
async def test_bad_tools_are_refused_and_nothing_is_made(server, api, body, status, code):
    before = await count_tools(server)
    response = await api.post("/v1/tools", json=webhook(**body), headers=V)
    assert error_of(response, status)["code"] == code
    assert await count_tools(server) == before


async def test_bad_updates_leave_the_tool_as_it_was(api):
    tool = (await api.post("/v1/tools", json=webhook(), headers=V)).json()
    rev = tool["currentRevisionId"]
    for body, status, code in [
        (
            {"currentRevisionId": rev, "implementation": {"type": "code", "source": "x"}},
            400,
            "tool.implementation_unsupported",
        ),
        ({"currentRevisionId": rev, "outputSchema": {"type": 5}}, 400, "tool.schema_invalid"),
        (
            {"currentRevisionId": rev, "implementation": {"type": "webhook", "url": "file:///etc"}},
            400,
            "request.invalid",
        ),
        ({"description": "no revision"}, 400, "request.invalid"),
        ({"currentRevisionId": rev, "name": "renamed"}, 400, "request.invalid"),
    ]:
        response = await api.patch(f"/v1/tools/{tool['id']}", json=body, headers=V)
        assert error_of(response, status)["code"] == code, body
    assert (await api.get(f"/v1/tools/{tool['id']}", headers=V)).json() == tool

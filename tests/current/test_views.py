"""Views in the current generation, in process over both backends: create/list/get/delete in the 0.3
words, the token shown once and kept only as a keyed digest, a view's own token reading its view, the
refusals (forged, expired and revoked tokens; origins a presentation does not allow; unknown scope ids;
components this server cannot show), and the page's framing policy."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.core import clock
from app.core.idempotency import IdempotencyRecord
from app.views.models import View
from tests.support import eventually, started_runtime

V = {"BCTRL-Version": "2026-10-03"}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


async def a_space(api) -> str:
    made = await api.post("/v1/spaces", json={"name": f"views-{uuid.uuid4().hex[:6]}"})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def create(api, scope: dict, **body):
    made = await api.post("/v1/views", json={"scope": scope, **body}, headers=V)
    assert made.status_code == 201, made.text
    return made.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", **V}


async def test_create_list_get_delete_and_the_token_is_shown_once(server, api):
    space = await a_space(api)
    made = await create(api, {"spaceId": space}, components={"events": True, "recordings": True})
    token = made["token"]
    assert token.startswith("bview_") and made["url"].endswith(f"/view?token={token}")
    assert made["object"] == "view" and made["scope"] == {"spaceId": space, "runtimeIds": None}
    assert made["components"]["events"] is True and made["components"]["recordings"] is True
    assert made["components"]["trace"] is False and made["components"]["bell"] is False
    assert made["control"] is False and made["presentation"] == {"mode": "hosted"}
    assert made["branding"]["productName"]
    lifetime = datetime.fromisoformat(made["expiresAt"]) - datetime.fromisoformat(made["createdAt"])
    assert lifetime == timedelta(hours=8)

    async with server.ctx.db.read() as s:
        row = await s.get(View, uuid.UUID(made["id"]))
    assert row.token_hash and token not in row.token_hash and len(row.token_hash) == 64

    got = await api.get(f"/v1/views/{made['id']}", headers=V)
    assert got.status_code == 200, got.text
    assert "token" not in got.json() and token not in got.text and got.json()["spaceName"].startswith("views-")
    listed = (await api.get("/v1/views", headers=V)).json()
    assert [v["id"] for v in listed["data"]] == [made["id"]] and token not in str(listed)
    assert listed["hasMore"] is False

    # The view's own token reads its view (and nothing else).
    async with server.anonymous(headers=bearer(token)) as holder:
        assert (await holder.get(f"/v1/views/{made['id']}")).json()["id"] == made["id"]
        other = await create(api, {"spaceId": space})
        assert error_of(await holder.get(f"/v1/views/{other['id']}"), 404)["code"] == "view.not_found"
        assert (await holder.get("/v1/views")).status_code == 401  # a view token is not an API key
        assert (await holder.get("/view/state")).status_code == 200

        deleted = await api.delete(f"/v1/views/{made['id']}", headers=V)
        assert deleted.json() == {"id": made["id"], "object": "view", "deleted": True}
        assert error_of(await holder.get("/view/state"), 401)["code"] == "auth.view_invalid"
        assert error_of(await holder.get(f"/v1/views/{made['id']}"), 401)["code"] == "auth.view_invalid"
    async with server.anonymous() as anyone:
        page = await anyone.get("/view", params={"token": token})
    assert page.status_code == 401 and "View unavailable" in page.text
    assert error_of(await api.get(f"/v1/views/{made['id']}", headers=V), 404)["code"] == "view.not_found"
    assert error_of(await api.delete(f"/v1/views/{made['id']}", headers=V), 404)["code"] == "view.not_found"
    assert [v["id"] for v in (await api.get("/v1/views", headers=V)).json()["data"]] == [other["id"]]


async def test_forged_and_expired_tokens_are_refused(server, api):
    made = await create(api, {"spaceId": await a_space(api)}, expiresInSeconds=3600)
    token = made["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with server.anonymous() as anyone:
        for raw in (forged, "bview_" + "0" * 32 + "_" + "x" * 43, "nonsense"):
            assert error_of(await anyone.get("/view/state", headers=bearer(raw)), 401)["code"] == "auth.view_invalid"
            assert (await anyone.get("/view", params={"token": raw})).status_code == 401
        assert (await anyone.get("/view", params={"token": token})).status_code == 200

        async with server.ctx.db.transaction() as s:
            await s.execute(
                update(View).where(View.id == uuid.UUID(made["id"])).values(expires_at=clock.now() - timedelta(1))
            )
        assert error_of(await anyone.get("/view/state", headers=bearer(token)), 401)["code"] == "auth.view_invalid"
        assert (await anyone.get("/view", params={"token": token})).status_code == 401
    # Expired views leave the list; the API key still reads one until it is deleted.
    assert made["id"] not in str((await api.get("/v1/views", headers=V)).json())
    assert (await api.get(f"/v1/views/{made['id']}", headers=V)).status_code == 200


async def test_presentation_sets_the_framing_policy_and_refuses_other_origins(server, api):
    space = await a_space(api)
    hosted = await create(api, {"spaceId": space})
    embedded = await create(
        api,
        {"spaceId": space},
        presentation={"mode": "embedded", "allowedOrigins": ["https://app.example.com", "http://127.0.0.1:3000"]},
    )
    assert embedded["presentation"] == {
        "mode": "embedded",
        "allowedOrigins": ["https://app.example.com", "http://127.0.0.1:3000"],
    }
    async with server.anonymous() as anyone:
        page = await anyone.get("/view", params={"token": hosted["token"]})
        assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        # A hosted view opened from a link on any site is fine; framed by another site, it is refused.
        linked = await anyone.get(
            "/view", params={"token": hosted["token"]}, headers={"Referer": "https://chat.example.org/x"}
        )
        assert linked.status_code == 200
        framed = {"Sec-Fetch-Dest": "iframe", "Referer": "https://evil.example.net/page"}
        assert (await anyone.get("/view", params={"token": hosted["token"]}, headers=framed)).status_code == 403

        page = await anyone.get("/view", params={"token": embedded["token"]})
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors https://app.example.com http://127.0.0.1:3000" in policy
        assert "x-frame-options" not in page.headers
        refused = await anyone.get("/view", params={"token": embedded["token"]}, headers=framed)
        assert refused.status_code == 403 and "View unavailable" in refused.text
        allowed = {"Sec-Fetch-Dest": "iframe", "Referer": "https://app.example.com/dashboard"}
        assert (await anyone.get("/view", params={"token": embedded["token"]}, headers=allowed)).status_code == 200

        state = "/view/state"
        elsewhere = {**bearer(embedded["token"]), "Origin": "https://evil.example.net"}
        assert error_of(await anyone.get(state, headers=elsewhere), 403)["code"] == "view.origin_denied"
        ok = {**bearer(embedded["token"]), "Origin": "https://app.example.com"}
        assert (await anyone.get(state, headers=ok)).status_code == 200
        hosted_elsewhere = {**bearer(hosted["token"]), "Origin": "https://app.example.com"}
        assert (await anyone.get(state, headers=hosted_elsewhere)).status_code == 403
        view_url = f"/v1/views/{embedded['id']}"
        assert error_of(await anyone.get(view_url, headers=elsewhere), 403)["code"] == "view.origin_denied"


async def test_bad_input_is_refused_and_nothing_is_kept(server, api):
    space = await a_space(api)
    cases = [
        ({"scope": {}}, 400, "request.invalid"),
        ({"scope": {"spaceId": space, "runId": str(uuid.uuid4())}}, 400, "request.invalid"),
        ({"scope": {"runtimeIds": [str(uuid.uuid4())]}}, 400, "request.invalid"),
        ({"scope": {"spaceId": str(uuid.uuid4())}}, 404, "space.not_found"),
        ({"scope": {"spaceId": space, "runtimeIds": [str(uuid.uuid4())]}}, 404, "browser.not_found"),
        ({"scope": {"runtimeId": str(uuid.uuid4())}}, 404, "browser.not_found"),
        ({"scope": {"runId": str(uuid.uuid4())}}, 404, "run.not_found"),
        ({"scope": {"conversationId": "c1"}}, 404, "conversation.not_found"),
        ({"scope": {"spaceId": space}, "components": {"bell": True}}, 400, "view.component_denied"),
        ({"scope": {"spaceId": space}, "components": {"trace": True}}, 400, "view.component_denied"),
        (
            {"scope": {"spaceId": space}, "components": {"conversations": True}},
            400,
            "view.conversation_component_required",
        ),
        ({"scope": {"spaceId": space}, "conversationSend": True}, 400, "view.conversation_component_required"),
        ({"scope": {"spaceId": space}, "components": {"files": {"read": True}}}, 400, "view.file_capability_required"),
        ({"scope": {"spaceId": space}, "components": {"live": True}}, 400, "request.invalid"),
        ({"scope": {"spaceId": space}, "expiresInSeconds": 30 * 86_400 + 1}, 400, "request.invalid"),
        ({"scope": {"spaceId": space}, "expiresInSeconds": 0}, 400, "request.invalid"),
        ({"scope": {"spaceId": space}, "presentation": {"mode": "embedded"}}, 400, "request.invalid"),
        (
            {"scope": {"spaceId": space}, "presentation": {"mode": "embedded", "allowedOrigins": ["https://a.b/x"]}},
            400,
            "request.invalid",
        ),
        (
            {"scope": {"spaceId": space}, "presentation": {"mode": "embedded", "allowedOrigins": ["*"]}},
            400,
            "request.invalid",
        ),
        (
            {"scope": {"spaceId": space}, "presentation": {"mode": "hosted", "allowedOrigins": ["https://a.b"]}},
            400,
            "request.invalid",
        ),
        ({"scope": {"spaceId": space}, "control": "yes"}, 400, "request.invalid"),
    ]
    for body, status, code in cases:
        answer = await api.post("/v1/views", json=body, headers=V)
        assert error_of(answer, status)["code"] == code, (body, answer.text)
    assert (await api.get("/v1/views", headers=V)).json()["data"] == []


async def test_a_retried_create_gets_the_same_view_with_a_fresh_token(server, api):
    space = await a_space(api)
    body = {"scope": {"spaceId": space}}
    key = {"Idempotency-Key": f"views-{uuid.uuid4().hex}", **V}
    first = (await api.post("/v1/views", json=body, headers=key)).json()
    again = await api.post("/v1/views", json=body, headers=key)
    assert again.status_code == 201, again.text
    second = again.json()
    assert second["id"] == first["id"] and second["token"] != first["token"]
    async with server.anonymous() as anyone:
        assert (await anyone.get("/view/state", headers=bearer(first["token"]))).status_code == 401
        assert (await anyone.get("/view/state", headers=bearer(second["token"]))).status_code == 200
    async with server.ctx.db.read() as s:
        stored = (await s.execute(select(IdempotencyRecord.response))).scalars().all()
    assert not any(first["token"] in str(r) or second["token"] in str(r) for r in stored)
    other = await api.post("/v1/views", json={"scope": {"spaceId": space}, "control": True}, headers=key)
    assert error_of(other, 409)["code"] == "idempotency.mismatch"


async def test_components_gate_the_page_routes(server, api):
    async with started_runtime(api) as runtime:
        await components_gate(server, api, runtime)


async def components_gate(server, api, runtime):
    run_id = runtime["activeRunId"]
    bare = await create(api, {"runId": run_id})
    assert bare["scope"] == {"runId": run_id, "runtimeId": runtime["id"]}
    full = await create(
        api, {"runtimeId": runtime["id"]}, control=True, components={"events": True, "recordings": True}
    )
    async with server.anonymous() as anyone:
        state = (await anyone.get("/view/state", headers=bearer(bare["token"]))).json()
        assert [b["run"]["id"] for b in state["browsers"]] == [run_id]
        for path, kw in (
            ("/view/events", {"params": {"runId": run_id}}),
            ("/view/replay", {"json": {"runId": run_id}}),
        ):
            method = anyone.get if path.endswith("events") else anyone.post
            refused = await method(path, headers=bearer(bare["token"]), **kw)
            assert error_of(refused, 403)["code"] == "view.component_denied"
        control = await anyone.post(
            "/view/live", json={"runId": run_id, "control": True}, headers=bearer(bare["token"])
        )
        assert error_of(control, 403)["code"] == "viewer.control_forbidden"
        # A run outside the view's scope is not found.
        outside = await anyone.post("/view/live", json={"runId": str(uuid.uuid4())}, headers=bearer(full["token"]))
        assert error_of(outside, 404)["code"] == "run.not_found"
        events = await anyone.get("/view/events", params={"runId": run_id}, headers=bearer(full["token"]))
        assert events.status_code == 200 and events.json()["runId"] == run_id


async def test_deleting_a_run_deletes_its_views_and_their_viewer_links(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        view = await create(api, {"runId": run_id})
        async with server.anonymous() as anyone:
            minted = await anyone.post("/view/live", json={"runId": run_id}, headers=bearer(view["token"]))
            assert minted.status_code == 200, minted.text
            assert "/live?token=" in minted.json()["url"]

    async def ended() -> bool:
        return (await api.get(f"/v1/runs/{run_id}", headers=V)).json()["status"] in ("ended", "failed")

    await eventually(ended, timeout=30)
    # Nothing is left to control in an ended run.
    refused = await api.post("/v1/views", json={"scope": {"runId": run_id}, "control": True}, headers=V)
    assert error_of(refused, 400)["code"] == "view.component_denied"
    deleted = await api.delete(f"/v1/runs/{run_id}", headers=V)
    assert deleted.status_code == 200, deleted.text
    assert error_of(await api.get(f"/v1/views/{view['id']}", headers=V), 404)["code"] == "view.not_found"
    async with server.anonymous() as anyone:
        assert (await anyone.get("/view/state", headers=bearer(view["token"]))).status_code == 401


async def test_a_replay_link_of_a_view_without_events_carries_no_activity(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        quiet = await create(api, {"runId": run_id}, components={"recordings": True})
        chatty = await create(api, {"runId": run_id}, components={"recordings": True, "events": True})
        async with server.anonymous() as anyone:
            activity = {}
            for name, view in (("quiet", quiet), ("chatty", chatty)):
                link = await anyone.post("/view/replay", json={"runId": run_id}, headers=bearer(view["token"]))
                assert link.status_code == 200, link.text
                url = link.json()["url"]
                assert url.endswith("&activity=0") == (name == "quiet")  # the page leaves its panel out
                token = url.split("token=", 1)[1].split("&", 1)[0]
                data = await anyone.get("/v1/replay/data", params={"token": token})
                assert data.status_code == 200, data.text
                activity[name] = data.json()["activity"]
    assert activity["quiet"] == [] and activity["chatty"], activity

"""Views in the current generation, in process over both backends: create/list/get/delete in the 0.3
words, the token shown once and kept only as a keyed digest, a view's own token reading its view, the
refusals (forged, expired and revoked tokens; origins a presentation does not allow; unknown scope ids;
components this server cannot show), the branding of the view's account in its answers, the page's
framing policy, and the page's data routes gated by the components (events, recordings, the trace, the
run's files) and bounded by the view's scope."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.artifacts import service as artifacts
from app.core import clock
from app.core.idempotency import IdempotencyRecord
from app.runs.trace import Span
from app.views.models import View
from app.views.service import span_tree
from tests.support import error_of, eventually, started_runtime

V = {"BCTRL-Version": "2026-10-03"}


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


async def test_a_view_answers_the_branding_of_its_account_as_the_account_answer_resolves_it(server, api):
    space = await a_space(api)
    defaults = (await api.get("/v1/account", headers=V)).json()["branding"]["resolved"]
    made = await create(api, {"spaceId": space})
    assert made["branding"] == defaults and made["branding"]["showPoweredBy"] is True

    patched = await api.patch(
        "/v1/account",
        json={"branding": {"productName": "Acme Views", "accent": "#AA3300", "logo": "https://cdn.acme.test/l.png"}},
        headers=V,
    )
    assert patched.status_code == 200, patched.text
    resolved = patched.json()["branding"]["resolved"]
    assert (
        resolved["tokens"]["accent"] == "#aa3300"
        and resolved["tokens"]["accentSoft"] != defaults["tokens"]["accentSoft"]
    )
    assert resolved == (await api.get("/v1/account", headers=V)).json()["branding"]["resolved"]
    # Every answer carrying the view carries the account's branding as it is now, the same value.
    assert (await api.get(f"/v1/views/{made['id']}", headers=V)).json()["branding"] == resolved
    assert [v["branding"] for v in (await api.get("/v1/views", headers=V)).json()["data"]] == [resolved]
    assert (await create(api, {"spaceId": space}))["branding"] == resolved
    async with server.anonymous(headers=bearer(made["token"])) as holder:  # read with the view's own token
        assert (await holder.get(f"/v1/views/{made['id']}")).json()["branding"] == resolved

    # Another account's views carry its own branding, never this one's.
    async with await server.client("other views brand") as other:
        await other.patch("/v1/account", json={"branding": {"productName": "Beta"}}, headers=V)
        theirs = await create(other, {"spaceId": await a_space(other)})
        assert theirs["branding"]["productName"] == "Beta" and theirs["branding"]["logo"] is None
        assert theirs["branding"]["tokens"]["accent"] == defaults["tokens"]["accent"]
    assert (await api.get(f"/v1/views/{made['id']}", headers=V)).json()["branding"] == resolved

    await api.patch("/v1/account", json={"branding": None}, headers=V)
    assert (await api.get(f"/v1/views/{made['id']}", headers=V)).json()["branding"] == defaults


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
        (
            {"scope": {"spaceId": space}, "components": {"conversations": True}},
            400,
            "view.conversation_component_required",
        ),
        ({"scope": {"spaceId": space}, "conversationSend": True}, 400, "view.conversation_component_required"),
        *[
            ({"scope": {"spaceId": space}, "components": {"files": {"read": True, name: True}}}, 400, code)
            for name, code in (
                ("upload", "view.file_capability_required"),
                ("manage", "view.file_capability_required"),
                ("library", "view.file_capability_required"),
                ("use", "view.file_capability_required"),
                ("list", "request.invalid"),
            )
        ],
        ({"scope": {"spaceId": space}, "components": {"files": {"read": "yes"}}}, 400, "request.invalid"),
        ({"scope": {"spaceId": space}, "components": {"trace": 1}}, 400, "request.invalid"),
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


async def record(server, run_id: str, kind: str, name: str, source) -> str:
    made = await artifacts.record(
        server.ctx, run_id=uuid.UUID(run_id), kind=kind, name=name, content_type="text/csv", source=source
    )
    return str(made.id)


async def test_the_trace_and_the_files_are_gated_by_their_components_and_bounded_by_the_scope(server, api, tmp_path):
    source = tmp_path / "report.csv"
    source.write_bytes(b"id,amount\n1,10\n")
    async with started_runtime(api) as runtime:
        first = runtime["activeRunId"]
        report = await record(server, first, "download", "report.csv", source)
        recording = await record(server, first, "recording", "recording.webm", source)
        # The browser's next run, with a file of its own.
        assert (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).status_code == 200

        async def ended() -> bool:
            return (await api.get(f"/v1/runs/{first}", headers=V)).json()["status"] in ("ended", "failed")

        await eventually(ended, timeout=30)
        restarted = await api.post(f"/v1/runtimes/{runtime['id']}/start")
        assert restarted.status_code in (200, 201), restarted.text
        second = restarted.json()["runId"]
        assert second != first
        other = await record(server, second, "download", "second.csv", source)

        bare = await create(api, {"runId": first}, components={"events": True, "recordings": True})
        of_run = await create(api, {"runId": first}, components={"trace": True, "files": {"read": True}})
        of_browser = await create(
            api, {"runtimeId": runtime["id"]}, components={"trace": True, "recordings": True, "files": {"read": True}}
        )
        assert of_run["components"]["trace"] is True and bare["components"]["trace"] is False
        assert of_run["components"]["files"] == {
            "library": False,
            "manage": False,
            "read": True,
            "upload": False,
            "use": False,
        }
        assert bare["components"]["files"]["read"] is False
        got = (await api.get(f"/v1/views/{of_run['id']}", headers=V)).json()
        assert got["components"]["trace"] is True and got["components"]["files"]["read"] is True

        async with server.anonymous() as anyone:

            def get(path, view, **params):
                return anyone.get(path, params=params, headers=bearer(view["token"]))

            # Without the component: 403 on every route of it.
            for path in ("/view/trace", "/view/files", f"/view/files/{report}"):
                refused = error_of(await get(path, bare, runId=first), 403)
                assert refused["code"] == "view.component_denied", (path, refused)
            assert error_of(await get("/view/trace", bare, runId=first), 403)["details"]["component"] == "trace"
            assert error_of(await get("/view/files", bare, runId=first), 403)["details"]["component"] == "files"
            state = (await get("/view/state", of_run)).json()
            assert state["components"]["trace"] is True and state["components"]["files"]["read"] is True
            assert (await get("/view/state", bare)).json()["components"]["files"]["read"] is False

            # The trace of the view's run: the run at the root, every other span under it.
            trace = (await get("/view/trace", of_run, runId=first)).json()
            spans = trace["spans"]
            assert trace["runId"] == first and spans[0]["id"] == first and spans[0]["kind"] == "run"
            assert spans[0]["depth"] == 0 and spans[0]["parentId"] is None and spans[0]["finishedAt"]
            seen = {spans[0]["id"]: 0}
            for span in spans[1:]:
                assert seen[span["parentId"]] == span["depth"] - 1  # its parent came before it
                seen[span["id"]] = span["depth"]
                assert span["startedAt"] >= spans[0]["startedAt"]
            # (the run's own recording, made at its stop, may be there too)
            assert [s["name"] for s in spans if s["kind"] == "artifact"][:2] == [
                "artifact download",
                "artifact recording",
            ]
            assert "runtime.start" in {s["name"] for s in spans if s["kind"] == "command"}
            assert all("attributes" not in s for s in spans)

            # Its files: the download, but not the recording of a view without recordings.
            files = (await get("/view/files", of_run, runId=first)).json()
            assert [(f["id"], f["name"], f["kind"]) for f in files["items"]] == [(report, "report.csv", "download")]
            assert files["items"][0]["sizeBytes"] == len(source.read_bytes())
            body = await get(f"/view/files/{report}", of_run, runId=first)
            assert body.status_code == 200 and body.content == source.read_bytes()
            assert body.headers["content-disposition"].startswith("attachment")
            part = await anyone.get(
                f"/view/files/{report}",
                params={"runId": first},
                headers={**bearer(of_run["token"]), "Range": "bytes=0-1"},
            )
            assert part.status_code == 206 and part.content == b"id"
            hidden = error_of(await get(f"/view/files/{recording}", of_run, runId=first), 404)
            assert hidden["code"] == "artifact.not_found"

            # Another run's: not found, whether named under the view's run or as itself.
            assert error_of(await get(f"/view/files/{other}", of_run, runId=first), 404)["code"] == "artifact.not_found"
            for path in ("/view/trace", "/view/files", f"/view/files/{other}"):
                assert error_of(await get(path, of_run, runId=second), 404)["code"] == "run.not_found"

            # A browser's view reads each of its runs', the recording too (it includes recordings).
            listed = (await get("/view/files", of_browser, runId=first)).json()["items"]
            assert [f["id"] for f in listed][-2:] == [recording, report]  # newest first
            assert {f["kind"] for f in listed} == {"download", "recording"}
            assert [f["id"] for f in (await get("/view/files", of_browser, runId=second)).json()["items"]] == [other]
            assert (await get(f"/view/files/{recording}", of_browser, runId=first)).status_code == 200
            later = (await get("/view/trace", of_browser, runId=second)).json()
            assert later["spans"][0]["id"] == second and later["finishedAt"] is None
            assert [s["name"] for s in later["spans"] if s["kind"] == "artifact"] == ["artifact download"]

        # The API key opens none of it: the page's routes take only a view's token.
        refused = await api.get("/view/files", params={"runId": first}, headers=V)
        assert error_of(refused, 401)["code"] == "auth.view_invalid"
        assert (await api.get(f"/view/files/{report}", params={"runId": first}, headers=V)).status_code == 401
        # A revoked view's files stop at once.
        assert (await api.delete(f"/v1/views/{of_run['id']}", headers=V)).status_code == 200
        async with server.anonymous() as anyone:
            gone = await anyone.get(f"/view/files/{report}", params={"runId": first}, headers=bearer(of_run["token"]))
            assert error_of(gone, 401)["code"] == "auth.view_invalid"


def test_the_timeline_nests_each_span_under_its_parent_in_start_order():
    t = clock.now()

    def span(id_, parent, seconds):
        return Span(id_, parent, "step", id_, "succeeded", t + timedelta(seconds=seconds), None)

    # As the trace lists them: by start time, children of two invocations interleaved.
    spans = [
        span("run", None, 0),
        span("a", "run", 1),
        span("b", "run", 2),
        span("a1", "a", 3),
        span("b1", "b", 4),
        span("a2", "a", 5),
        span("orphan", "gone", 6),
    ]
    assert [(s.id, depth) for s, depth in span_tree(spans)] == [
        ("run", 0),
        ("a", 1),
        ("a1", 2),
        ("a2", 2),
        ("b", 1),
        ("b1", 2),
        ("orphan", 0),
    ]


async def test_a_view_of_a_run_is_announced_in_the_runs_events(server, api):
    """view.created and view.revoked are events of the run (webhooks and drains follow them); a view of
    a space names no run and adds no event anywhere."""
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        made = await create(api, {"runId": run_id}, components={"events": True})
        await create(api, {"spaceId": runtime["spaceId"]})
        assert (await api.delete(f"/v1/views/{made['id']}", headers=V)).status_code == 200
        listed = await api.get(f"/v1/runs/{run_id}/events", params=[("type", "view.created"), ("type", "view.revoked")])
        announced = [(e["type"], e["data"]["viewId"], e["data"]["scope"]) for e in listed.json()["data"]]
        assert announced == [("view.created", made["id"], "run"), ("view.revoked", made["id"], "run")]

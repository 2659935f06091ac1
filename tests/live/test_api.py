"""Live view and recording leases through the API, on both backends: who may have one, what bad
requests get, and that viewer tokens can neither be forged nor used for another run."""

from __future__ import annotations

import base64
import time
import uuid

import orjson
import pytest

from tests.support import eventually, started_runtime

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def test_live_and_recording_leases_are_scoped_to_the_account(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
        live = await api.post(f"/v1/runs/{run_id}/live", json={"expiresInSeconds": 120})
        assert live.status_code == 200, live.text
        body = live.json()
        assert body["iframeUrl"].startswith(f"{server.settings.resolved_public_url}/live?token=")
        assert body["control"] == "none"
        expires = time.mktime(time.strptime(body["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert 100 < expires - time.time() <= 121

        recording = await api.post(f"/v1/runs/{run_id}/recording", json={})
        assert recording.status_code == 200
        assert recording.json()["status"] in ("preparing",) and recording.json()["iframeUrl"].startswith(
            f"{server.settings.resolved_public_url}/replay?token="
        )

        async with await server.client("someone-else") as other:
            for path in (f"/v1/runs/{run_id}/live", f"/v1/runs/{run_id}/recording"):
                response = await other.post(path, json={})
                assert response.status_code == 404 and response.json()["code"] == "run.not_found"


async def test_bad_requests(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
        for body, field in (
            ({"control": "drive"}, "control"),
            ({"expiresInSeconds": 0}, "expiresInSeconds"),
            ({"expiresInSeconds": 86_401}, "expiresInSeconds"),
            ({"components": ["nope"]}, "components"),
            ({"colour": "red"}, "colour"),
        ):
            response = await api.post(f"/v1/runs/{run_id}/live", json=body)
            assert response.status_code == 400 and response.json()["code"] == "request.invalid", body
            assert field in str(response.json()["details"]), response.json()
        assert (await api.post(f"/v1/runs/{uuid.uuid4()}/live", json={})).status_code == 404
        assert (await api.post("/v1/runs/not-a-uuid/recording", json={})).status_code == 404


async def test_live_needs_an_active_run(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
    ended = await api.post(f"/v1/runs/{run_id}/live", json={})
    assert ended.status_code == 409 and ended.json()["code"] == "run.live_not_active"
    # A recording link works after the run too.
    assert (await api.post(f"/v1/runs/{run_id}/recording", json={})).status_code == 200


async def test_replay_tokens_cannot_be_forged_or_swapped(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
        replay = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()["url"].split("token=", 1)[1]
        live = (await api.post(f"/v1/runs/{run_id}/live", json={})).json()["url"].split("token=", 1)[1]
    anonymous = server.anonymous()
    assert (await anonymous.get("/v1/replay/data", params={"token": replay})).status_code == 200

    payload, signature = replay.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["r"] = uuid.uuid4().hex  # another run, same signature
    swapped = base64.urlsafe_b64encode(orjson.dumps(claims)).decode().rstrip("=") + "." + signature
    for token in (swapped, live, "", "a.b", replay + "x"):
        response = await anonymous.get("/v1/replay/data", params={"token": token})
        assert response.status_code == 401 and response.json()["code"] == "viewer.token_invalid", token
        assert run_id not in response.text
    assert (await anonymous.get("/v1/replay/frames/1", params={"token": swapped})).status_code == 401


async def test_viewer_pages_are_served_without_credentials(server):
    anonymous = server.anonymous()
    for path, marker in (("/live", "__viewer"), ("/replay", "__replay")):
        response = await anonymous.get(path, params={"token": "whatever"})
        assert response.status_code == 200 and marker in response.text
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_links_can_be_revoked_before_they_expire(server, api):
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
        replay = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()
        live = (await api.post(f"/v1/runs/{run_id}/live", json={})).json()
        anonymous = server.anonymous()
        replay_token = replay["url"].split("token=", 1)[1]
        assert (await anonymous.get("/v1/replay/data", params={"token": replay_token})).status_code == 200

        revoked = await api.delete(f"/v1/runs/{run_id}/viewers/{replay['viewerId']}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["kind"] == "replay" and revoked.json()["revokedAt"]
        refused = await anonymous.get("/v1/replay/data", params={"token": replay_token})
        assert refused.status_code == 401 and refused.json()["code"] == "viewer.token_invalid"
        # Revoking again answers the same link, unchanged.
        again = await api.delete(f"/v1/runs/{run_id}/viewers/{replay['viewerId']}")
        assert again.status_code == 200 and again.json()["revokedAt"] == revoked.json()["revokedAt"]

        # Another account cannot revoke (or learn of) this run's links; unknown ids are 404.
        async with await server.client("someone-else") as other:
            response = await other.delete(f"/v1/runs/{run_id}/viewers/{live['viewerId']}")
            assert response.status_code == 404 and response.json()["code"] == "run.not_found"
        for viewer_id in (str(uuid.uuid4()), "nope"):
            response = await api.delete(f"/v1/runs/{run_id}/viewers/{viewer_id}")
            assert response.status_code == 404 and response.json()["code"] == "viewer.not_found"

        everything = await api.delete(f"/v1/runs/{run_id}/viewers")
        assert everything.status_code == 200
        assert {v["viewerId"] for v in everything.json()["data"]} == {live["viewerId"], replay["viewerId"]}
        assert all(v["revokedAt"] for v in everything.json()["data"])

        async def revocations():  # events are written in batches, shortly after the answer
            events = (await api.get(f"/v1/runs/{run_id}/events", params={"category": "live"})).json()["data"]
            found = [e["data"]["viewerId"] for e in events if e["type"] == "live.revoked"]
            return found if len(found) >= 2 else None

        assert sorted(await eventually(revocations, timeout=5)) == sorted([live["viewerId"], replay["viewerId"]])

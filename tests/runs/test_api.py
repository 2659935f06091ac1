from __future__ import annotations

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def test_runs_list_filters_and_event_paging(server, api, stop_afterwards):
    space = (await api.post("/v1/spaces", json={"name": "runs"})).json()
    runtime = (await api.post("/v1/runtimes", json={"spaceId": space["id"], "start": True})).json()
    stop_afterwards(runtime["id"])
    first_run = runtime["activeRunId"]
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    second_run = (await api.post(f"/v1/runtimes/{runtime['id']}/start")).json()["runId"]

    def ids(resp):
        return [r["id"] for r in resp.json()["data"]]

    assert ids(await api.get("/v1/runs")) == [first_run, second_run]
    assert ids(await api.get("/v1/runs", params={"status": "active"})) == [second_run]
    assert ids(await api.get("/v1/runs", params={"status": "completed", "spaceId": space["id"]})) == [first_run]
    assert ids(await api.get("/v1/runs", params={"runtimeId": "not-a-uuid"})) == []
    assert (await api.get("/v1/runs", params={"status": "paused"})).status_code == 400
    run = (await api.get(f"/v1/runs/{second_run}")).json()
    assert run["spaceId"] == space["id"] and run["runtimeType"] == "browser"
    assert run["recording"] == {"enabled": True}
    # The observer keeps adding browser events to an active run; on a finished one the count is final.
    finished = (await api.get(f"/v1/runs/{first_run}")).json()
    everything = (await api.get(f"/v1/runs/{first_run}/events", params={"limit": 200})).json()["data"]
    assert finished["counts"]["events"] == len(everything) == everything[-1]["seq"]

    # Lifecycle and connection events, paged two at a time (the observer's browser events are filtered out).
    flt = [("category", "runtime"), ("category", "connection")]
    page1 = (await api.get(f"/v1/runs/{first_run}/events", params=[*flt, ("limit", 2)])).json()
    assert [e["type"] for e in page1["events"]] == ["runtime.starting", "runtime.active"] and page1["nextCursor"]
    page2 = (await api.get(f"/v1/runs/{first_run}/events", params=[*flt, ("cursor", page1["nextCursor"])])).json()
    assert [e["type"] for e in page2["data"]] == ["connection.created", "runtime.stopped"]
    assert page2["nextCursor"] is None
    seqs = [e["seq"] for e in page1["data"] + page2["data"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    only = (await api.get(f"/v1/runs/{first_run}/events", params={"type": "runtime.active"})).json()
    assert [e["type"] for e in only["data"]] == ["runtime.active"]
    assert all(e["category"] == "runtime" and e["source"] == "control-plane" for e in page1["data"])
    assert (await api.get(f"/v1/runs/{first_run}/events", params={"category": "nonsense"})).status_code == 400


async def test_other_accounts_runs_are_404(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    run_id = runtime["activeRunId"]
    async with await server.client("other") as other:
        assert (await other.get(f"/v1/runs/{run_id}")).json()["code"] == "run.not_found"
        assert (await other.get(f"/v1/runs/{run_id}/events")).status_code == 404
        assert (await other.get("/v1/runs")).json()["data"] == []
    assert (await api.get("/v1/runs/xyz")).status_code == 404

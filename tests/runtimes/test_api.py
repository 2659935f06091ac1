from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import chromium_pids, eventually, profile_fragment

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


def browser_pids(server, runtime_id: str) -> list[int]:
    return chromium_pids(profile_fragment(server.settings.data_dir, runtime_id))


def main_browser_pid(server, runtime_id: str) -> int:
    """The browser process itself, not one of its renderers or helpers (those carry --type=)."""
    for pid in browser_pids(server, runtime_id):
        if b"--type=" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no browser process")


async def event_types(api, run_id: str) -> list[str]:
    """The run's lifecycle events (the observer adds browser events beside them)."""
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"category": "runtime", "limit": 200})).json()
    return [e["type"] for e in events["data"]]


async def new_space(api) -> str:
    return (await api.post("/v1/spaces", json={"name": "work"})).json()["id"]


async def test_seed_create_launches_and_stop_cleans_up(server, api, stop_afterwards):
    space_id = await new_space(api)
    created = await api.post(
        f"/v1/spaces/{space_id}/runtimes",
        json={"name": "crm", "metadata": {"job": 7}, "config": {"viewport": {"width": 1024, "height": 768}}},
    )
    assert created.status_code == 201, created.text
    runtime = created.json()
    stop_afterwards(runtime["id"])
    assert runtime["status"] == "active" and runtime["activeRunId"]
    assert runtime["spaceId"] == space_id and runtime["name"] == "crm" and runtime["metadata"] == {"job": 7}
    assert runtime["connections"]["cdp"]["available"] is True
    assert browser_pids(server, runtime["id"]), "a Chromium process runs for the runtime"
    # The viewport asked is the page's: the window is that plus the chrome around it (app/drivers/viewport.py).
    assert b"--window-size=1024," in Path(f"/proc/{main_browser_pid(server, runtime['id'])}/cmdline").read_bytes()

    run = (await api.get(f"/v1/runs/{runtime['activeRunId']}")).json()
    assert run["status"] == "active" and run["runtimeId"] == runtime["id"] and run["finishedAt"] is None

    stopped = await api.post(f"/v1/spaces/{space_id}/runtimes/{runtime['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped" and stopped.json()["activeRunId"] is None
    assert browser_pids(server, runtime["id"]) == []
    assert not list((server.settings.resolved_browser_root / "profiles").glob(f"{runtime['id']}.*"))

    run = (await api.get(f"/v1/runs/{runtime['activeRunId']}")).json()
    assert run["status"] == "completed" and run["finishedAt"] and run["durationSeconds"] >= 0
    assert await event_types(api, run["id"]) == ["runtime.starting", "runtime.active", "runtime.stopped"]

    again = await api.post(f"/v1/spaces/{space_id}/runtimes/{runtime['id']}/stop")
    assert again.status_code == 200 and again.json()["status"] == "stopped"
    assert await event_types(api, run["id"]) == ["runtime.starting", "runtime.active", "runtime.stopped"]


async def test_seed_list_get_runs_and_delete(server, api):
    space_id = await new_space(api)
    runtime = (await api.post(f"/v1/spaces/{space_id}/runtimes", json={})).json()
    base = f"/v1/spaces/{space_id}/runtimes"
    listed = (await api.get(base)).json()
    assert [r["id"] for r in listed["runtimes"]] == [runtime["id"]] == [r["id"] for r in listed["data"]]
    assert (await api.get(f"{base}/{runtime['id']}")).json()["status"] == "active"
    runs = (await api.get(f"{base}/{runtime['id']}/runs", params={"status": "active"})).json()
    assert [r["id"] for r in runs["runs"]] == [runtime["activeRunId"]]

    refused = await api.delete(f"{base}/{runtime['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_stopped"
    assert browser_pids(server, runtime["id"])

    forced = await api.delete(f"{base}/{runtime['id']}", params={"force": "true"})
    assert forced.status_code == 200 and forced.json() == {"id": runtime["id"], "deleted": True}
    assert browser_pids(server, runtime["id"]) == []
    assert (await api.get(f"{base}/{runtime['id']}")).status_code == 404
    # The run record outlives the runtime.
    run = (await api.get(f"/v1/runs/{runtime['activeRunId']}")).json()
    assert run["status"] == "completed"


async def test_runtime_in_another_space_or_account_is_404(server, api):
    space_a, space_b = await new_space(api), await new_space(api)
    runtime = (await api.post("/v1/runtimes", json={"spaceId": space_a})).json()
    assert (await api.get(f"/v1/spaces/{space_b}/runtimes/{runtime['id']}")).status_code == 404
    async with await server.client("other") as other:
        for call in (
            other.get(f"/v1/runtimes/{runtime['id']}"),
            other.post(f"/v1/runtimes/{runtime['id']}/start"),
            other.post(f"/v1/runtimes/{runtime['id']}/stop"),
            other.delete(f"/v1/runtimes/{runtime['id']}"),
            other.post(f"/v1/spaces/{space_a}/runtimes", json={}),
        ):
            response = await call
            assert response.status_code == 404, response.text
    assert (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["status"] == "stopped"


async def test_flat_lifecycle(server, api, stop_afterwards):
    created = await api.post("/v1/runtimes", json={"type": "browser", "name": "flat"})
    assert created.status_code == 201
    runtime = created.json()
    stop_afterwards(runtime["id"])
    assert runtime["status"] == "stopped" and runtime["activeRunId"] is None
    default_space = (await api.get("/v1/spaces/default")).json()
    assert runtime["spaceId"] == default_space["id"]

    started = (await api.post(f"/v1/runtimes/{runtime['id']}/start", json={})).json()
    assert started["started"] is True and started["status"] == "active" and started["runId"]
    again = (await api.post(f"/v1/runtimes/{runtime['id']}/start")).json()
    assert again["started"] is False and again["runId"] == started["runId"]

    assert (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["activeRunId"] == started["runId"]
    stopped = (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).json()
    assert stopped == {"runtimeId": runtime["id"], "runId": started["runId"], "status": "stopped", "stopped": True}
    assert (await api.post(f"/v1/runtimes/{runtime['id']}/stop")).json()["stopped"] is False
    assert browser_pids(server, runtime["id"]) == []

    # A second start opens a second run.
    second = (await api.post(f"/v1/runtimes/{runtime['id']}/start")).json()
    assert second["runId"] != started["runId"]
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    runs = (await api.get("/v1/runs", params={"runtimeId": runtime["id"]})).json()["data"]
    assert [r["id"] for r in runs] == [started["runId"], second["runId"]]
    assert {r["status"] for r in runs} == {"completed"}


async def test_flat_create_with_start_and_filters(server, api, stop_afterwards):
    space_id = await new_space(api)
    live = (await api.post("/v1/runtimes", json={"spaceId": space_id, "start": True})).json()
    stop_afterwards(live["id"])
    idle = (await api.post("/v1/runtimes", json={"spaceId": space_id})).json()
    assert live["status"] == "active" and idle["status"] == "stopped"

    def ids(resp):
        return [r["id"] for r in resp.json()["data"]]

    assert ids(await api.get("/v1/runtimes", params={"spaceId": space_id})) == [live["id"], idle["id"]]
    assert ids(await api.get("/v1/runtimes", params={"status": "active"})) == [live["id"]]
    assert ids(await api.get("/v1/runtimes", params=[("status[]", "stopped")])) == [idle["id"]]
    assert ids(
        await api.get("/v1/runtimes", params=[("status", "active"), ("status", "stopped"), ("spaceId", space_id)])
    ) == [live["id"], idle["id"]]
    bad = await api.get("/v1/runtimes", params={"status": "sleeping"})
    assert bad.status_code == 400 and bad.json()["details"]["fields"][0]["field"].startswith("query.status")
    assert (await api.get("/v1/runtimes", params={"spaceId": "nope"})).status_code == 404


async def test_patch_runtime(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    renamed = await api.patch(f"/v1/runtimes/{runtime['id']}", json={"name": "renamed", "metadata": {"a": 1}})
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
    refused = await api.patch(f"/v1/runtimes/{runtime['id']}", json={"config": {"locale": "de-DE"}})
    assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_stopped"
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    ok = await api.patch(f"/v1/runtimes/{runtime['id']}", json={"config": {"locale": "de-DE"}})
    assert ok.status_code == 200 and ok.json()["config"] == {"locale": "de-DE"}
    await api.post(f"/v1/runtimes/{runtime['id']}/start")
    assert b"--lang=de-DE" in Path(f"/proc/{main_browser_pid(server, runtime['id'])}/cmdline").read_bytes()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "desktop"}, "type"),
        ({"name": "y" * 300}, "name"),
        ({"name": ""}, "name"),
        ({"start": "soon"}, "start"),
        ({"config": {"viewport": {"width": 10, "height": 10}}}, "config.viewport.width"),
        ({"config": {"proxy": "http://x"}}, "config.proxy"),
        ({"config": {"locale": "not a locale"}}, "config.locale"),
        ({"idleTimeoutSeconds": 5}, "idleTimeoutSeconds"),
    ],
)
async def test_bad_runtime_bodies(server, api, body, field):
    response = await api.post("/v1/runtimes", json=body)
    assert response.status_code == 400, response.text
    assert field in [f["field"] for f in response.json()["details"]["fields"]]
    assert (await api.get("/v1/runtimes")).json()["data"] == []


async def test_unknown_space_and_malformed_ids(api):
    assert (await api.post("/v1/spaces/not-a-uuid/runtimes", json={})).json()["code"] == "space.not_found"
    assert (await api.post("/v1/runtimes", json={"spaceId": "7"})).json()["code"] == "space.not_found"
    for path in ("/v1/runtimes/xyz", "/v1/runtimes/00000000-0000-7000-8000-000000000000"):
        response = await api.get(path)
        assert response.status_code == 404 and response.json()["code"] == "runtime.not_found"
    assert (await api.post("/v1/runtimes/xyz/start")).status_code == 404
    assert (await api.get("/v1/runtimes")).json()["data"] == []


async def test_browser_death_fails_the_run(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    stop_afterwards(runtime["id"])
    run_id = runtime["activeRunId"]
    os.kill(main_browser_pid(server, runtime["id"]), signal.SIGKILL)

    async def failed():
        return (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["status"] == "failed"

    await eventually(failed, timeout=5)
    rt = (await api.get(f"/v1/runtimes/{runtime['id']}")).json()
    assert rt["activeRunId"] is None and rt["failure"]["code"] == "runtime.browser_exited"
    run = (await api.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "failed" and run["failure"]["code"] == "runtime.browser_exited"
    assert "signal 9" in run["failure"]["message"]
    assert (await event_types(api, run_id))[-1] == "runtime.failed"
    await eventually(lambda: browser_pids(server, runtime["id"]) == [], timeout=5)
    # A failed runtime can be started again.
    restarted = (await api.post(f"/v1/runtimes/{runtime['id']}/start")).json()
    assert restarted["started"] is True and restarted["runId"] != run_id


async def test_idempotent_create_replays_and_conflicts(server, api):
    headers = {"Idempotency-Key": "create-1"}
    first = await api.post("/v1/runtimes", json={"name": "once"}, headers=headers)
    second = await api.post("/v1/runtimes", json={"name": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotency-replayed") == "true"
    conflict = await api.post("/v1/runtimes", json={"name": "different"}, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency.conflict"
    assert len((await api.get("/v1/runtimes")).json()["data"]) == 1
    too_long = await api.post("/v1/runtimes", json={}, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 400


async def test_idempotent_start_replays(server, api, stop_afterwards):
    runtime = (await api.post("/v1/runtimes", json={})).json()
    stop_afterwards(runtime["id"])
    headers = {"Idempotency-Key": "start-1"}
    first = (await api.post(f"/v1/runtimes/{runtime['id']}/start", headers=headers)).json()
    replay = (await api.post(f"/v1/runtimes/{runtime['id']}/start", headers=headers)).json()
    assert replay == first and first["started"] is True


async def test_failed_request_frees_its_idempotency_key(make_server):
    async with make_server("sqlite", chromium_path="/nonexistent/chromium") as srv, await srv.client() as api:
        headers = {"Idempotency-Key": "retry-me"}
        first = await api.post("/v1/runtimes", json={"start": True}, headers=headers)
        assert first.status_code == 503
        second = await api.post("/v1/runtimes", json={"start": True}, headers=headers)
        assert second.status_code == 503 and second.json()["code"] == "runtime.host_unavailable"
        # The retry ran again (a new runtime tried to launch); it was not a replay of the failure.
        assert "idempotency-replayed" not in second.headers
        assert second.json()["details"]["runtimeId"] != first.json()["details"]["runtimeId"]


async def test_missing_chromium_is_503_and_leaves_a_failed_record(make_server):
    async with make_server("postgres", chromium_path="/nonexistent/chromium") as srv, await srv.client() as api:
        space_id = await new_space(api)
        response = await api.post(f"/v1/spaces/{space_id}/runtimes", json={})
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "runtime.host_unavailable"
        assert "apt-get install chromium" in body["error"] and "BCTRL_CHROMIUM_PATH" in body["error"]
        runtime = (await api.get(f"/v1/runtimes/{body['details']['runtimeId']}")).json()
        assert runtime["status"] == "failed" and runtime["activeRunId"] is None
        run = (await api.get(f"/v1/runs/{body['details']['runId']}")).json()
        assert run["status"] == "failed" and run["failure"]["code"] == "runtime.host_unavailable"
        assert await event_types(api, run["id"]) == ["runtime.starting", "runtime.failed"]


async def test_launch_timeout_kills_what_it_started(make_server, tmp_path):
    # Outside /tmp and executable by anyone: the browser runs as a uid of its own with a private /tmp.
    bin_dir = Path("/usr/local/lib/bctrl-tests")
    bin_dir.mkdir(parents=True, exist_ok=True)
    bin_dir.chmod(0o755)
    tag = uuid.uuid4().hex[:8]
    fake, marker = bin_dir / f"hanging-chromium-{tag}", f"bctrl-hanging-child-{tag}"
    fake.write_text(f"#!/bin/sh\nsh -c 'sleep 300' {marker} &\nwait\n")
    fake.chmod(0o755)
    async with (
        make_server("sqlite", chromium_path=str(fake), launch_timeout_seconds=1.0) as srv,
        await srv.client() as api,
    ):
        response = await api.post("/v1/runtimes", json={"start": True})
        assert response.status_code == 503 and "within 1s" in response.json()["error"]
        runtime_id = response.json()["details"]["runtimeId"]
        assert (await api.get(f"/v1/runtimes/{runtime_id}")).json()["status"] == "failed"
        # Both the fake browser and the child it forked are gone: the whole process group was killed.
        await eventually(lambda: chromium_pids(str(fake)) == [] and chromium_pids(marker) == [], timeout=10)
    fake.unlink()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_capacity_limit_is_429_with_retry_after(make_server, backend):
    async with make_server(backend, max_runtimes=2) as srv, await srv.client() as api:
        ids = [(await api.post("/v1/runtimes", json={})).json()["id"] for _ in range(5)]
        results = await asyncio.gather(*(api.post(f"/v1/runtimes/{i}/start") for i in ids))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 200, 429, 429, 429], [r.text for r in results if r.status_code == 503]
        refused = next(r for r in results if r.status_code == 429)
        assert refused.json()["code"] == "runtime.capacity_exhausted"
        assert int(refused.headers["retry-after"]) > 0
        listed = (await api.get("/v1/runtimes")).json()["data"]
        assert sorted(r["status"] for r in listed) == ["active", "active", "stopped", "stopped", "stopped"]
        browsers = [
            pid
            for pid in chromium_pids(profile_fragment(srv.settings.data_dir))
            if b"--type=" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(browsers) == 2
        # A create that is refused for capacity leaves no runtime behind.
        refused_create = await api.post("/v1/runtimes", json={"start": True})
        assert refused_create.status_code == 429
        assert len((await api.get("/v1/runtimes")).json()["data"]) == 5
        for runtime in listed:
            await api.post(f"/v1/runtimes/{runtime['id']}/stop")
        # Capacity is free again.
        assert (await api.post(f"/v1/runtimes/{ids[0]}/start")).status_code == 200
        await api.post(f"/v1/runtimes/{ids[0]}/stop")


async def test_idle_runtime_is_stopped_and_busy_one_is_not(server, api, stop_afterwards):
    from sqlalchemy import update

    from app.core import clock
    from app.runs.models import RunEvent

    idle = (await api.post("/v1/runtimes", json={"start": True, "idleTimeoutSeconds": 60})).json()
    busy = (await api.post("/v1/runtimes", json={"start": True, "idleTimeoutSeconds": 60})).json()
    plain = (await api.post("/v1/runtimes", json={"start": True})).json()
    for runtime in (idle, busy, plain):
        stop_afterwards(runtime["id"])
    # `busy` has a client attached; then two minutes pass without activity on all three.
    # (The server's own sweeper may act at any moment: the order of these steps keeps that harmless.)
    server.ctx.events.emit(uuid.UUID(busy["activeRunId"]), "connection.attached", "connection", {})
    while server.ctx.events.pending:
        await server.ctx.events.flush()
    async with server.ctx.db.transaction() as s:
        for runtime in (idle, plain, busy):
            await s.execute(
                update(RunEvent)
                .where(RunEvent.run_id == uuid.UUID(runtime["activeRunId"]))
                .values(time=clock.now() - timedelta(minutes=2))
            )
    await server.ctx.supervisor.stop_idle()

    assert (await api.get(f"/v1/runtimes/{idle['id']}")).json()["status"] == "stopped"
    assert (await api.get(f"/v1/runtimes/{busy['id']}")).json()["status"] == "active"
    assert (await api.get(f"/v1/runtimes/{plain['id']}")).json()["status"] == "active"
    stopped = (await api.get(f"/v1/runs/{idle['activeRunId']}/events", params={"type": "runtime.stopped"})).json()
    assert stopped["data"][0]["data"]["reason"] == "idle for 60 s"
    assert browser_pids(server, idle["id"]) == []

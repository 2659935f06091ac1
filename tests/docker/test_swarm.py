"""The Swarm driver end to end on a one-node swarm of the machine's dockerd: each browser a service of
one task (host networking, Chromium on 127.0.0.1), driven through the proxy, removed at stop; a task
that dies or a service removed behind the server's back fails the run; the sweep removes services
whose runtime is gone."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import pytest
from playwright.sync_api import sync_playwright

from app.core.driver import DriverError, LaunchSpec
from app.drivers.swarm import SwarmDriver
from tests.docker.swarm import (  # noqa: F401  (fixtures)
    LABEL,
    second_node,
    service_gone,
    services_of,
    swarm_cluster,
    swarm_fixture,
    swarm_link_fixture,
    task_container,
)
from tests.e2e.conftest import lease, stop_in_teardown
from tests.e2e.test_cdp import events_of, wait_for


@pytest.fixture(scope="module")
def slive(swarm, tmp_path_factory):
    with swarm_cluster(tmp_path_factory.mktemp("swarm")) as servers:
        yield servers[0]


@pytest.fixture
def stop_afterwards(slive):
    yield from stop_in_teardown(slive)


def _runtime(client) -> dict:
    space = client.post("/v1/spaces", json={"name": f"swarm-{uuid.uuid4().hex[:6]}"}).json()
    runtime = client.post(f"/v1/spaces/{space['id']}/runtimes", json={}, timeout=200).json()
    assert runtime.get("status") == "active", runtime
    return runtime


def _path(runtime: dict) -> str:
    return f"/v1/spaces/{runtime['spaceId']}/runtimes/{runtime['id']}"


def _failed(client, runtime: dict) -> dict:
    return wait_for(lambda: (r := client.get(_path(runtime)).json())["status"] == "failed" and r, timeout=20)


def test_browser_is_a_hardened_service_driven_through_the_proxy_and_removed_at_stop(
    slive, swarm, pages, stop_afterwards
):
    with slive.client() as client:
        runtime = _runtime(client)
        stop_afterwards(runtime["id"])
        [service] = services_of(swarm, runtime["id"])
        spec = service.attrs["Spec"]
        assert spec["Labels"][f"{LABEL}.run"] == runtime["activeRunId"]
        template = spec["TaskTemplate"]
        assert template["RestartPolicy"]["Condition"] == "none"
        limits, reserved = template["Resources"]["Limits"], template["Resources"]["Reservations"]
        assert limits["MemoryBytes"] == 2 * 1024**3 and limits["NanoCPUs"] == 2 * 10**9 and limits["Pids"] == 1024
        assert reserved["NanoCPUs"] == 25 * 10**7 and reserved["MemoryBytes"] == 256 * 1024**2
        # The task's container: no capability, a read-only root, the image's own non-root user.
        container = swarm.containers.get(task_container(swarm, service))
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True and not host["Privileged"]
        assert host["NetworkMode"] == "host" and host["PidsLimit"] == 1024
        assert container.exec_run(["id", "-u"]).output.strip() == b"1000"
        assert container.exec_run(["touch", "/etc/owned"]).exit_code != 0
        status = container.exec_run(["grep", "-E", "^CapEff", "/proc/1/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status
        # The stored address is the task's: Chromium on this node's loopback, reached through our proxy.
        url = lease(client, runtime).json()["endpoint"]["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(url)
            page = browser.contexts[0].new_page()
            page.goto(f"{pages.url}/one.html")
            assert page.title() == "page one"
            browser.close()
        navigated = [
            e["data"]["url"] for e in events_of(client, runtime["activeRunId"]) if e["type"] == "page.navigated"
        ]
        assert f"{pages.url}/one.html" in navigated
        assert client.post(f"{_path(runtime)}/stop").status_code == 200
        assert service_gone(swarm, service.id)
        assert client.get(_path(runtime)).json()["status"] == "stopped"


def test_a_killed_task_fails_its_run(slive, swarm, stop_afterwards):
    with slive.client() as client:
        runtime = _runtime(client)
        stop_afterwards(runtime["id"])
        [service] = services_of(swarm, runtime["id"])
        swarm.containers.get(task_container(swarm, service)).kill()
        failed = _failed(client, runtime)
        assert failed["failure"]["code"] == "runtime.browser_exited"
        assert "task ended" in failed["failure"]["message"], failed
        assert client.get(f"/v1/runs/{runtime['activeRunId']}").json()["status"] == "failed"
        wait_for(lambda: service_gone(swarm, service.id), timeout=30)  # restart policy none: never again


def test_a_service_removed_behind_the_servers_back_fails_its_run(slive, swarm, stop_afterwards):
    with slive.client() as client:
        runtime = _runtime(client)
        stop_afterwards(runtime["id"])
        [service] = services_of(swarm, runtime["id"])
        service.remove()
        failed = _failed(client, runtime)
        assert failed["failure"]["code"] == "runtime.browser_exited"
        assert "service was removed" in failed["failure"]["message"], failed


def test_the_sweep_removes_a_labelled_service_whose_runtime_is_gone(slive, swarm, stop_afterwards):
    with slive.client() as client:
        runtime = _runtime(client)  # a real service of this deployment, to copy its labels from
        stop_afterwards(runtime["id"])
        [real] = services_of(swarm, runtime["id"])
    labels = {**real.attrs["Spec"]["Labels"], f"{LABEL}.runtime": str(uuid.uuid4())}
    orphan = swarm.services.create(
        "bctrl/chromium:latest",
        command=["sleep", "300"],
        labels=labels,
        container_labels=labels,
        networks=["host"],
        restart_policy={"Condition": "none"},
        name=f"bctrl-orphan-{uuid.uuid4().hex[:6]}",
    )
    try:
        wait_for(lambda: service_gone(swarm, orphan.id), timeout=20)
        assert not service_gone(swarm, real.id)  # its own runtime's service stays
        # Nor does its task's container stay (the engine may leave one `Created` when a service goes mid-start).
        of_orphan = {"label": f"{LABEL}.runtime={labels[f'{LABEL}.runtime']}"}
        wait_for(lambda: not swarm.containers.list(all=True, filters=of_orphan), timeout=90, interval=1)
    finally:
        if not service_gone(swarm, orphan.id):
            orphan.remove()


# --- placement by location (node labels) and free capacity, at the driver ---------------------------


@dataclass(frozen=True)
class Located(LaunchSpec):
    """A launch that names its location (/tmp/requests/swarm.md asks for the field on LaunchSpec itself)."""

    location: str | None = None


def _driver(tmp_path, reserve_cpus: float = 0.25) -> SwarmDriver:
    return SwarmDriver(
        image="bctrl/chromium:latest",
        deployment=f"test-{uuid.uuid4().hex[:10]}",
        memory="2g",
        cpus=2.0,
        pids_limit=1024,
        shm_size="512m",
        scratch_dir=tmp_path,
        reserve_cpus=reserve_cpus,
        reserve_memory="256m",
    )


@pytest.fixture
def labelled(swarm):
    """This node in location `test-eu` for the test."""
    node = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
    spec = node.attrs["Spec"]
    node.update({**spec, "Labels": {**spec.get("Labels", {}), "io.bctrl.location": "test-eu"}})
    yield node
    node.reload()
    spec = node.attrs["Spec"]
    node.update({**spec, "Labels": {k: v for k, v in spec.get("Labels", {}).items() if k != "io.bctrl.location"}})


def test_nodes_by_location_with_free_capacity_and_placement_by_location(swarm, labelled, tmp_path):
    async def scenario():
        driver = _driver(tmp_path)
        try:
            [before] = [n for n in await driver.nodes() if n.node_id == labelled.id]
            assert before.location == "test-eu" and before.available
            # 2 CPUs here, a quarter reserved per browser: 8 browsers when empty.
            assert before.slots == 8 and before.free <= before.slots
            handle = await driver.launch(Located(runtime_id=uuid.uuid4(), location="test-eu"), timeout=150)
            try:
                service = swarm.services.get(handle.state["serviceId"])
                constraints = service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
                assert "node.labels.io.bctrl.location==test-eu" in constraints
                [during] = [n for n in await driver.nodes() if n.node_id == labelled.id]
                assert during.free == before.free - 1
            finally:
                await driver.stop(handle.state)
            with pytest.raises(DriverError) as refused:
                await driver.launch(Located(runtime_id=uuid.uuid4(), location="elsewhere"), timeout=150)
            assert refused.value.code == "runtime.location_unavailable"
            assert not swarm.services.list(filters={"label": f"{LABEL}.deployment={driver.deployment}"})
        finally:
            await driver.close()

    asyncio.run(scenario())


def test_locations_and_a_browser_placed_by_location_through_the_api(slive, labelled, stop_afterwards):
    """What a client sees: the swarm's locations with their free capacity, a location the swarm does not
    have refused before anything is made, and a browser created in a location running there."""
    current = {"BCTRL-Version": "2026-10-03"}

    def location(client, name: str) -> dict:
        found = client.get("/v1/locations", headers=current).json()["data"]
        return next(loc for loc in found if loc["id"] == name)

    with slive.client() as client:
        eu = location(client, "test-eu")
        assert eu["status"] == "available" and eu["nodes"] == 1 and 0 < eu["freeSlots"] <= eu["slots"]
        refused = client.post("/v1/browsers", json={"location": "mars-1"}, headers=current)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "browser.option_unsupported"
        assert "test-eu" in refused.json()["error"]["message"]
        answer = client.post(
            "/v1/browsers", params={"wait": 60}, json={"location": "test-eu"}, headers=current, timeout=200
        )
        made = answer.json()
        assert answer.status_code in (200, 201), made
        stop_afterwards(made["id"])
        assert made["status"] == "running" and made["location"] == "test-eu", made
        assert made["currentRun"]["location"] == "test-eu"
        listed = client.get("/v1/browsers", params={"location": "test-eu"}, headers=current).json()["data"]
        assert made["id"] in [b["id"] for b in listed]
        assert location(client, "test-eu")["freeSlots"] == eu["freeSlots"] - 1


def test_a_browser_no_node_has_room_for_is_refused_at_once(swarm, tmp_path):
    async def scenario():
        driver = _driver(tmp_path, reserve_cpus=1.5)  # this node's 2 CPUs hold one such browser
        try:
            first = await driver.launch(LaunchSpec(runtime_id=uuid.uuid4()), timeout=150)
            try:
                started = time.monotonic()
                with pytest.raises(DriverError) as refused:
                    await driver.launch(LaunchSpec(runtime_id=uuid.uuid4()), timeout=150)
                assert refused.value.code == "runtime.capacity_exhausted", refused.value.message
                assert time.monotonic() - started < 30  # the scheduler's answer, not the launch timeout
                ours = swarm.services.list(filters={"label": f"{LABEL}.deployment={driver.deployment}"})
                assert [service.id for service in ours] == [first.state["serviceId"]]  # nothing half-created
            finally:
                await driver.stop(first.state)
        finally:
            await driver.close()

    asyncio.run(scenario())


# --- two nodes: a second dockerd in the session's network namespace, joined as a worker -------------


@pytest.fixture(scope="module")
def node2(swarm, swarm_link, tmp_path_factory):
    with second_node(swarm, swarm_link, tmp_path_factory.mktemp("node2")) as node:
        yield node


def test_placement_by_location_reaches_the_node_labelled_with_it(swarm, node2, tmp_path):
    node = swarm.nodes.get(node2.node_id)
    node.update({**node.attrs["Spec"], "Labels": {"io.bctrl.location": "test-far"}})

    async def scenario():
        driver = _driver(tmp_path)
        try:
            by_location = {n.location: n for n in await driver.nodes() if n.available}
            assert by_location["test-far"].node_id == node2.node_id and by_location["test-far"].free == 8
            handle = await driver.launch(Located(runtime_id=uuid.uuid4(), location="test-far"), timeout=150)
            try:
                # The browser's address is its task's node's: the namespace's end of the veth pair.
                assert handle.http_url.startswith(f"http://{node2.link.node_addr}:")
                assert handle.state["nodeId"] == node2.node_id
                [far] = [n for n in await driver.nodes() if n.node_id == node2.node_id]
                assert far.free == 7
                assert await driver.is_alive(handle.state)
                # Files are read through a container on this node only: refused with the documented code.
                with pytest.raises(DriverError) as refused:
                    await driver.area_list(handle.state, "/downloads", "")
                assert refused.value.code == "browser.file_transfer_failed"
                assert "not on this node" in refused.value.message
            finally:
                await driver.stop(handle.state)
        finally:
            await driver.close()

    asyncio.run(scenario())


def test_a_browser_on_another_node_is_driven_and_fails_within_seconds_when_its_node_dies(
    swarm, swarm_link, node2, pages, tmp_path
):
    # The egress proxy listens where the other node's browsers reach it: the host's end of the veth pair.
    with swarm_cluster(tmp_path, BCTRL_EGRESS_HOST=swarm_link.host_addr) as [server]:
        here = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
        here.update({**here.attrs["Spec"], "Availability": "pause"})  # new browsers go to the other node
        try:
            with server.client() as client:
                runtime = _runtime(client)
        finally:
            here.reload()
            here.update({**here.attrs["Spec"], "Availability": "active"})
        with server.client() as client:
            [service] = services_of(swarm, runtime["id"])
            task = service.attrs["Spec"]["TaskTemplate"]
            assert f"node.id=={node2.node_id}" in task["Placement"]["Constraints"]
            assert f"BCTRL_CDP_BIND={swarm_link.node_addr}" in task["ContainerSpec"]["Env"]
            url = lease(client, runtime).json()["endpoint"]["url"]
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(url)
                page = browser.contexts[0].new_page()
                page.goto(f"{pages.url}/one.html")
                assert page.title() == "page one"
                browser.close()
            died = time.monotonic()
            node2.kill()
            failed = _failed(client, runtime)
            assert time.monotonic() - died < 15, "the node's death took too long to fail the run"
            assert failed["failure"]["code"] == "runtime.browser_exited"
            assert "left the swarm" in failed["failure"]["message"], failed
            assert client.post(f"{_path(runtime)}/stop").status_code == 200

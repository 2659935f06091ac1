"""Fixtures of the Swarm tier: a single-node swarm made of the machine's own dockerd, and real server
processes with BCTRL_DRIVER=swarm on it.

The swarm is initialised for the session and left (`docker swarm leave --force`) at its end, so the
rest of the Docker tier finds the plain engine it expects. It listens and advertises on the host's end
of a veth pair into a network namespace the session creates (a second node, a dockerd in that
namespace, joins there). Plain containers of the other modules are untouched by swarm mode (they are
not services, and their host networking is unchanged).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.docker.conftest import DOCKER_ENV
from tests.e2e.conftest import LiveServer, create_db, drop_db, start_server, stop_server

# vfs copies the whole image for each task's container: slow when the machine is busy.
SWARM_ENV = {**DOCKER_ENV, "BCTRL_DRIVER": "swarm", "BCTRL_LAUNCH_TIMEOUT_SECONDS": "150"}
LABEL = "io.bctrl"


@dataclass(frozen=True)
class Link:
    """A network namespace this session made, joined to the host by a veth pair on a private /30: the
    only addresses besides loopback that swarm traffic (and the tests' own) goes to."""

    netns: str
    host_addr: str
    node_addr: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="session", name="swarm_link")
def swarm_link_fixture():
    taken = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    third = next(n for n in (secrets.randbelow(250) + 1 for _ in range(50)) if f" 10.213.{n}." not in taken)
    tag = secrets.token_hex(3)
    link = Link(f"bctrl-sw-{tag}", f"10.213.{third}.1", f"10.213.{third}.2")
    host_end, node_end = f"bsw{tag}h", f"bsw{tag}n"
    _ip("netns", "add", link.netns)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
        _ip("link", "set", node_end, "netns", link.netns)
        _ip("addr", "add", f"{link.host_addr}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        for args in (("addr", "add", f"{link.node_addr}/30", "dev", node_end), ("link", "set", node_end, "up")):
            _ip("-n", link.netns, *args)
        _ip("-n", link.netns, "link", "set", "lo", "up")
        yield link
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", link.netns], capture_output=True)


@pytest.fixture(scope="session", name="swarm")
def swarm_fixture(swarm_link):
    """The engine as the manager of a swarm of its own, listening and advertising on the host's end of
    the session's veth pair (a second node can join from the namespace; nothing else can reach it),
    with a one-second dispatcher heartbeat so a node that stops answering is down within seconds.
    Left at the session's end, with the bridge swarm mode made, so the Docker tier finds a plain engine."""
    client = docker.from_env(timeout=120)
    if client.info()["Swarm"]["LocalNodeState"] != "inactive":
        pytest.fail("The Docker engine is in a swarm already; these tests make their own (docker swarm leave --force)")
    networks = {n.name for n in client.networks.list()}
    client.swarm.init(
        advertise_addr=swarm_link.host_addr,
        listen_addr=f"{swarm_link.host_addr}:2377",
        dispatcher_heartbeat_period=10**9,
    )
    try:
        yield client
    finally:
        # Browsers a failed test left (they outlive their server), then the swarm itself.
        for service in client.services.list():
            service.remove()
        _leave(client)
        if "docker_gwbridge" not in networks:
            with contextlib.suppress(docker.errors.APIError):
                client.networks.get("docker_gwbridge").remove()
        client.close()


def _leave(client: docker.DockerClient) -> None:
    """Leave once no task is left and their containers are removed. On vfs making or removing a container
    copies or deletes the whole image, and a leave that waits for one longer than its own deadline fails
    half done ("context deadline exceeded"; the engine answers "the client connection is closing" until
    a later leave succeeds). A container the engine left `Created` behind its removed task is removed here."""
    deadline = time.monotonic() + 180
    while client.api.tasks() and time.monotonic() < deadline:
        time.sleep(0.5)
    of_tasks = {"label": "com.docker.swarm.task.id"}
    while client.containers.list(all=True, filters=of_tasks) and time.monotonic() < deadline:
        for container in client.containers.list(all=True, filters={**of_tasks, "status": "created"}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        time.sleep(0.5)
    deadline = time.monotonic() + 90
    while True:
        try:
            client.swarm.leave(force=True)
            return
        except docker.errors.APIError:
            if client.info()["Swarm"]["LocalNodeState"] == "inactive":
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(3)


@contextmanager
def swarm_cluster(tmp: Path, count: int = 1, **extra: str):
    """`count` swarm-driver servers sharing one fresh database and Redis namespace."""
    url, key, prefix = create_db(), f"bctrl_e2e_{uuid.uuid4().hex}", f"bctrl-test-{uuid.uuid4().hex[:8]}"
    servers: list[LiveServer] = []
    try:
        for i in range(count):
            servers.append(start_server(tmp / f"srv{i}", url, key, prefix, **{**SWARM_ENV, **extra}))
        yield servers
    finally:
        for server in servers:
            stop_server(server)
        drop_db(url)


def services_of(engine: docker.DockerClient, runtime_id: str) -> list:
    return engine.services.list(filters={"label": f"{LABEL}.runtime={runtime_id}"})


def service_gone(engine: docker.DockerClient, service_id: str) -> bool:
    try:
        engine.services.get(service_id)
    except docker.errors.NotFound:
        return True
    return False


def task_container(engine: docker.DockerClient, service) -> str:
    [task] = service.tasks()
    return task["Status"]["ContainerStatus"]["ContainerID"]


@dataclass
class SecondNode:
    node_id: str
    engine: docker.DockerClient
    link: Link

    def kill(self) -> None:
        """The node dies: every process in its namespace (its dockerd, containerd and the browser) killed."""
        _kill_namespace(self.link.netns)


def _kill_namespace(netns: str) -> None:
    found = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    for pid in found:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@contextmanager
def second_node(swarm: docker.DockerClient, link: Link, root: Path):
    """A second dockerd (with a containerd of its own, so its host-network containers share its namespace)
    in the session's network namespace, joined to the swarm as a worker, the runtime image loaded into it.
    `nsenter --net`, not `ip netns exec`: the latter remounts /sys, and dockerd then finds no cgroups."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "containerd.toml").write_text(
        f'version = 2\nroot = "{root}/containerd"\nstate = "{root}/containerd-state"\n'
        f'[grpc]\n  address = "{root}/containerd.sock"\n[ttrpc]\n  address = "{root}/containerd.sock.ttrpc"\n'
    )
    enter = ["nsenter", f"--net=/var/run/netns/{link.netns}"]
    logs = open(root / "daemons.log", "wb")
    daemons = [
        subprocess.Popen([*enter, "containerd", "--config", str(root / "containerd.toml")], stdout=logs, stderr=logs)
    ]
    engine = None
    try:
        _wait(lambda: (root / "containerd.sock").exists(), 30, "containerd did not start")
        daemons.append(
            subprocess.Popen(
                [
                    *enter,
                    "dockerd",
                    f"--containerd={root}/containerd.sock",
                    f"--data-root={root}/docker",
                    f"--exec-root={root}/exec",
                    f"--pidfile={root}/docker.pid",
                    f"-H=unix://{root}/docker.sock",
                    "--storage-driver=vfs",
                    "--iptables=false",
                    "--bridge=none",
                ],
                stdout=logs,
                stderr=logs,
            )
        )
        _wait(lambda: (root / "docker.sock").exists(), 60, "the second dockerd did not start")
        engine = docker.DockerClient(base_url=f"unix://{root}/docker.sock", version="1.41", timeout=300)
        _wait(lambda: _answers(engine), 60, "the second dockerd does not answer")
        # No registry here: the image goes over as a tar stream (about a minute on vfs).
        engine.images.load(swarm.images.get("bctrl/chromium:latest").save(named=True))
        token = swarm.swarm.attrs["JoinTokens"]["Worker"]
        engine.swarm.join(
            remote_addrs=[f"{link.host_addr}:2377"],
            join_token=token,
            listen_addr=f"{link.node_addr}:2377",
            advertise_addr=link.node_addr,
        )
        node_id = engine.info()["Swarm"]["NodeID"]
        _wait(lambda: swarm.nodes.get(node_id).attrs["Status"]["State"] == "ready", 60, "the node is not ready")
        yield SecondNode(node_id, engine, link)
    finally:
        _kill_namespace(link.netns)
        for daemon in daemons:
            with contextlib.suppress(ProcessLookupError):
                daemon.kill()
            daemon.wait()
        if engine is not None:
            engine.close()
        with contextlib.suppress(docker.errors.APIError):
            for node in swarm.nodes.list(filters={"role": "worker"}):
                node.remove(force=True)
        # Mounts a killed dockerd left (shm, the containers' own) under its root, then its files.
        with open("/proc/mounts") as mounts:
            inside = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
        for path in sorted(inside, reverse=True):
            subprocess.run(["umount", "-l", path], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _answers(engine: docker.DockerClient) -> bool:
    try:
        return engine.ping()
    except Exception:  # the client raises its own errors and requests' alike
        return False


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.2)

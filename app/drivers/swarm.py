"""Swarm driver: each browser a Docker Swarm service of one task, from the runtime image, as hardened
as the Docker driver's containers, placed on a node of the swarm this server's engine manages.

- A service per browser, restart policy `none`: a browser that ends stays ended, its run fails.
- Placement: the driver picks the node (ready, active, in the location asked for by its node label
  `io.bctrl.location`, with a free reservation; this server's own node first) and pins the task there,
  so the browser's address is known before it starts and is the task's, not the creating replica's.
- Networking: the `host` network. On this server's node Chromium binds 127.0.0.1 on a port free here;
  on another node it binds that node's swarm address through the image's relay. Overlay networks are
  not used: docs/decisions.md says why.
- Hardening: what the Engine's service API (1.41) takes: every capability dropped, a read-only root,
  tmpfs for the writable places, the image's non-root user, pids, memory and CPU limits, and
  reservations so the scheduler counts a browser's share of a node. Not settable on a 1.41 service:
  no-new-privileges (the image runs no setuid program that could use it: an empty bounding set).
- Files (downloads, the browser files API) go through the task's container when it is on this node;
  on another node they are refused (`browser.file_transfer_failed`).

Every call goes through the blocking `docker` package on the Docker driver's thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import httpx
import structlog
from docker.utils import parse_bytes
from requests.exceptions import RequestException

from app.core.driver import BrowserHandle, DriverError, LaunchSpec, ManagedBrowser, StateCallback
from app.drivers import display, viewport
from app.drivers.docker import DOWNLOADS_DIR, LABEL, TMPFS, DockerDriver, _free_port

log = structlog.get_logger(__name__)

# The node label naming a node's location (`docker node update --label-add io.bctrl.location=eu-1 NODE`);
# unlabelled nodes are in the location every browser may ask for today, `local`.
LOCATION_LABEL = "io.bctrl.location"
DEFAULT_LOCATION = "local"
# Ports of browsers on other nodes: even ones (the relay), Chromium on the odd one above.
REMOTE_PORTS = range(40000, 50000, 2)
# Words of a pending task the scheduler cannot place (swarmkit's "no suitable node (insufficient
# resources on 1 node)", "...scheduling constraints not satisfied..."): refused at once, not at the timeout.
_UNPLACEABLE = ("no suitable node", "insufficient resources")

# Task states (swarmkit's) in which the browser may still come up or is up.
_LIVE_TASK_STATES = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}


@dataclass(frozen=True)
class NodeCapacity:
    """A node of the swarm as placement sees it: its location and how many more browsers fit there (its
    CPUs and memory less the reservations of every task the swarm keeps running on it)."""

    node_id: str
    hostname: str
    location: str
    address: str
    available: bool  # ready and active: the scheduler places tasks there
    slots: int  # browsers it holds when empty
    free: int  # browsers it can take now


def _location_of(node: dict) -> str:
    return ((node.get("Spec") or {}).get("Labels") or {}).get(LOCATION_LABEL) or DEFAULT_LOCATION


def _tmpfs_mounts() -> list[docker.types.Mount]:
    """The Docker driver's tmpfs areas as service mounts, sizes kept. A 1.41 tmpfs mount takes a size and a
    mode, no owner: sticky and world-writable (as Docker's own /tmp), so the browser's user writes there."""
    mounts = []
    for target, options in TMPFS.items():
        size = next(o.split("=", 1)[1] for o in options.split(",") if o.startswith("size="))
        mounts.append(docker.types.Mount(target, None, type="tmpfs", tmpfs_size=parse_bytes(size), tmpfs_mode=0o1777))
    return mounts


class SwarmDriver(DockerDriver):
    name = "swarm"
    browsers_outlive_server = True
    keeps_state = False

    def __init__(
        self,
        *,
        reserve_cpus: float,
        reserve_memory: str,
        **docker_settings: Any,
    ) -> None:
        super().__init__(network="host", **docker_settings)
        self.reserve_cpus, self.reserve_memory = reserve_cpus, reserve_memory
        self._node_id: str | None = None

    # --- the swarm ---

    async def _local_node(self) -> str:
        """This engine's node id; refuses an engine that is not a manager of an active swarm."""
        if self._node_id is None:
            try:
                info = await self._call(lambda: self._docker().info())
            except (docker.errors.DockerException, RequestException) as exc:
                raise DriverError(f"No Docker engine answers: {exc}") from exc
            swarm = info.get("Swarm") or {}
            if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                raise DriverError(
                    "BCTRL_DRIVER=swarm needs this server's Docker engine to be a manager of an active swarm "
                    "(`docker swarm init`)"
                )
            self._node_id = swarm["NodeID"]
        return self._node_id

    async def _task(self, service_id: str) -> dict | None:
        """The service's task (one: restart policy none), or None when the service is gone."""
        try:
            tasks = await self._call(lambda: self._docker().api.tasks(filters={"service": service_id}))
        except docker.errors.NotFound:
            return None
        if not tasks:
            # No task yet, or the service is gone: tell them apart.
            try:
                await self._call(lambda: self._docker().api.inspect_service(service_id))
            except docker.errors.NotFound:
                return None
            return {}
        return max(tasks, key=lambda t: t.get("CreatedAt", ""))

    async def nodes(self) -> list[NodeCapacity]:
        """Every node of the swarm with its free capacity, counted in browsers of this deployment's
        reservation (BCTRL_SWARM_RESERVE_CPUS, _MEMORY)."""

        def read():
            api = self._docker().api
            return api.nodes(), api.tasks(filters={"desired-state": "running"})

        try:
            nodes, tasks = await self._call(read)
        except (docker.errors.DockerException, RequestException) as exc:
            raise DriverError(f"The swarm's manager does not answer: {exc}") from exc
        reserved: dict[str, list[int]] = {}
        for task in tasks:
            want = ((task.get("Spec") or {}).get("Resources") or {}).get("Reservations") or {}
            used = reserved.setdefault(task.get("NodeID") or "", [0, 0])
            used[0] += want.get("NanoCPUs") or 0
            used[1] += want.get("MemoryBytes") or 0
        cpu_each, memory_each = int(self.reserve_cpus * 1e9), parse_bytes(self.reserve_memory)
        found = []
        for node in nodes:
            have = (node.get("Description") or {}).get("Resources") or {}
            cpus, memory = have.get("NanoCPUs") or 0, have.get("MemoryBytes") or 0
            used_cpu, used_memory = reserved.get(node["ID"], [0, 0])
            available = (node.get("Status") or {}).get("State") == "ready" and (node.get("Spec") or {}).get(
                "Availability"
            ) == "active"
            slots = min(cpus // cpu_each, memory // memory_each)
            free = max(0, min((cpus - used_cpu) // cpu_each, (memory - used_memory) // memory_each))
            found.append(
                NodeCapacity(
                    node_id=node["ID"],
                    hostname=(node.get("Description") or {}).get("Hostname") or node["ID"],
                    location=_location_of(node),
                    address=(node.get("Status") or {}).get("Addr") or "",
                    available=available,
                    slots=int(slots),
                    free=int(free) if available else 0,
                )
            )
        return found

    async def _place(self, location: str | None, here: str) -> NodeCapacity:
        """The node a browser goes to: one the scheduler may use, in the location asked for, with room;
        this server's own node first (its browsers' files are reachable here), then the emptiest."""
        nodes = [n for n in await self.nodes() if n.available and location in (None, n.location)]
        if not nodes:
            raise DriverError(
                f"No node of the swarm is in location {location!r}" if location else "No node of the swarm is ready",
                code="runtime.location_unavailable" if location else "runtime.host_unavailable",
            )
        roomy = sorted((n for n in nodes if n.free > 0), key=lambda n: (n.node_id != here, -n.free))
        if not roomy:
            where = f" in location {location!r}" if location else ""
            raise DriverError(
                f"No node of the swarm{where} has room for another browser", code="runtime.capacity_exhausted"
            )
        return roomy[0]

    async def _remote_port(self, node_id: str) -> int:
        """A port pair (relay, Chromium) on another node that none of this deployment's browsers there holds."""

        def taken() -> set[int]:
            used = set()
            for service in self._docker().api.services(filters={"label": f"{LABEL}.deployment={self.deployment}"}):
                task = service["Spec"]["TaskTemplate"]
                if f"node.id=={node_id}" in ((task.get("Placement") or {}).get("Constraints") or []):
                    for pair in task["ContainerSpec"].get("Env") or []:
                        if pair.startswith("BCTRL_CDP_PORT="):
                            used.add(int(pair.split("=", 1)[1]))
            return used

        used = await self._call(taken)
        while True:
            port = REMOTE_PORTS[secrets.randbelow(len(REMOTE_PORTS))]
            if port not in used:
                return port

    # --- launch ---

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        location = spec.location
        location = None if location in (None, "", "auto") else location
        here = await self._local_node()
        node = await self._place(location, here)
        constraints = [f"node.id=={node.node_id}"]  # the node chosen here: its address is known before start
        if location not in (None, DEFAULT_LOCATION):
            constraints.append(f"node.labels.{LOCATION_LABEL}=={location}")
        if node.node_id == here:
            bind, port = "127.0.0.1", _free_port()
        else:
            # Another node: Chromium behind the image's relay on that node's swarm address (its loopback is
            # not ours), on a port none of this deployment's browsers there uses.
            bind, port = node.address, await self._remote_port(node.node_id)
        flags = []
        wanted = spec.viewport or (None if spec.window_size else viewport.DEFAULT_VIEWPORT)
        window = self.chrome.window_size(self.image, spec.headless, wanted) if wanted else spec.window_size
        if window:
            flags.append(f"--window-size={window[0]},{window[1]}")
        if spec.locale:
            flags.append(f"--lang={spec.locale}")
        if spec.extensions:
            raise DriverError(
                "Extensions are not loaded into Swarm browsers yet (no volume can be filled before a task starts)",
                code="runtime.extension_unavailable",
            )
        entrance = None
        if spec.proxy:
            if getattr(self, "proxy_entrance", None) is None or not self.proxy_url:
                raise DriverError("Browser proxies need the egress proxy", code="runtime.proxy_unavailable")
            entrance = await self.proxy_entrance(spec.proxy)
        env = {
            "BCTRL_CDP_PORT": str(port),
            "BCTRL_CDP_BIND": bind,
            "BCTRL_CHROMIUM_FLAGS": " ".join(flags),
            "BCTRL_HEADLESS": "1" if spec.headless else "0",
            "BCTRL_SCREEN": "x".join(map(str, display.screen_size(window or (1280, 800)))),
            "BCTRL_USER_AGENT": spec.user_agent or "",
            "BCTRL_PROXY_SERVER": entrance or self.proxy_url or "",
        }
        labels = self._labels(spec)
        name = f"bctrl-rt-{spec.runtime_id.hex[-12:]}-{uuid.uuid4().hex[:6]}"
        # The image's healthcheck asks $BCTRL_CDP_PORT on loopback; behind the relay Chromium is on the next port.
        health = (
            None
            if bind == "127.0.0.1"
            else docker.types.Healthcheck(
                test=["CMD-SHELL", f"curl -fsS http://127.0.0.1:{port + 1}/json/version >/dev/null"],
                interval=int(5e9),
                timeout=int(3e9),
                retries=3,
                start_period=int(10e9),
            )
        )
        container = docker.types.ContainerSpec(
            self.image,
            env=env,
            labels=labels,
            mounts=_tmpfs_mounts(),
            read_only=True,
            cap_drop=["ALL"],
            healthcheck=health,
            stop_grace_period=int(self.stop_timeout * 1e9),
        )
        resources = docker.types.Resources(
            cpu_limit=int(self.cpus * 1e9),
            mem_limit=parse_bytes(self.memory),
            cpu_reservation=int(self.reserve_cpus * 1e9),
            mem_reservation=parse_bytes(self.reserve_memory),
        )
        resources["Limits"]["Pids"] = self.pids_limit  # API 1.41; the docker package has no word for it yet
        template = docker.types.TaskTemplate(
            container,
            resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="none"),
            placement=docker.types.Placement(constraints=constraints),
            networks=["host"],
        )
        try:
            created = await self._call(lambda: self._docker().api.create_service(template, name=name, labels=labels))
        except (docker.errors.DockerException, RequestException) as exc:
            if entrance:
                await self.proxy_release(entrance)
            raise DriverError(f"The swarm refused to create the browser service: {exc}") from exc
        state: dict[str, Any] = {
            "serviceId": created["ID"],
            "serviceName": name,
            # Where it runs: the node's location, what the browser and its runs show (app/usage/locations.py).
            "location": node.location,
            "serverInstance": self.instance,
            "proxyUrl": self.proxy_url if not entrance else None,
            "proxyEntrance": entrance,
            "traffic": spec.traffic,
        }
        try:
            if on_started is not None:
                await on_started(dict(state))
            await asyncio.wait_for(self._wait_ready(state, f"{bind}:{port}"), timeout)
        except (TimeoutError, DriverError, docker.errors.DockerException, RequestException) as exc:
            logs = await self._service_logs(state["serviceId"])
            with contextlib.suppress(docker.errors.DockerException, RequestException):
                await self.stop(state)
            if isinstance(exc, DriverError):
                raise DriverError(f"{exc.message}{logs}", code=exc.code) from None
            if isinstance(exc, TimeoutError):
                where = f" (task {state.get('taskState', 'not scheduled')})"
                raise DriverError(
                    f"Chromium in service {name} did not answer within {timeout:g}s{where}{logs}"
                ) from None
            raise DriverError(f"The browser service {name} could not be started: {exc}{logs}") from exc
        except BaseException:
            await self.stop(state)
            raise
        if wanted:
            self.chrome.learn(self.image, spec.headless, await viewport.fit(state["wsUrl"], wanted))
        return BrowserHandle(runtime_id=spec.runtime_id, http_url=state["httpUrl"], ws_url=state["wsUrl"], state=state)

    async def _wait_ready(self, state: dict[str, Any], address: str) -> None:
        """Follow the task until it runs, then the browser's endpoint until it answers; fill in `state`."""
        async with httpx.AsyncClient(timeout=2.0, trust_env=False, verify=False) as client:
            while True:
                task = await self._task(state["serviceId"])
                if task is None:
                    raise DriverError("The browser service was removed during start")
                status = task.get("Status") or {}
                state["taskState"] = status.get("State", "new")
                why = (status.get("Err") or "").lower()
                if state["taskState"] == "pending" and any(words in why for words in _UNPLACEABLE):
                    raise DriverError(
                        f"No node of the swarm can take this browser now: {status.get('Err')}",
                        code="runtime.capacity_exhausted",
                    )
                if task and state["taskState"] not in _LIVE_TASK_STATES:
                    raise DriverError(
                        f"The browser's task ended during start: {state['taskState']} {status.get('Err') or ''}".strip()
                    )
                # `starting` until the image's healthcheck first passes (5 s on): the endpoint answers before.
                if state["taskState"] in ("starting", "running"):
                    state.update(
                        taskId=task["ID"],
                        nodeId=task.get("NodeID"),
                        # Its container only when on this node: the engine asked for files is this one.
                        containerId=(status.get("ContainerStatus") or {}).get("ContainerID")
                        if task.get("NodeID") == self._node_id
                        else None,
                        address=address,
                    )
                    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                        response = await client.get(f"http://{address}/json/version")
                        if response.status_code == 200:
                            path = "/" + response.json()["webSocketDebuggerUrl"].split("/", 3)[3]
                            state.update(httpUrl=f"http://{address}", wsUrl=f"ws://{address}{path}")
                            return
                await asyncio.sleep(0.1)

    async def _service_logs(self, service_id: str) -> str:
        try:
            raw = await self._call(
                lambda: self._docker().api.service_logs(service_id, stdout=True, stderr=True, tail=5)
            )
            text = b"".join(raw).decode(errors="replace").strip()
        except (docker.errors.DockerException, RequestException):
            return ""
        return f"; its last log lines: {text}" if text else ""

    # --- stop, watch, find ---

    async def stop(self, state: dict[str, Any], save_to: Path | None = None) -> int | None:
        if state.get("proxyEntrance") and getattr(self, "proxy_release", None) is not None:
            await self.proxy_release(state["proxyEntrance"])
        service_id = state.get("serviceId")
        if not service_id:
            # A task's container its service left behind (list_browsers): removed like the Docker driver's.
            return await super().stop(state) if state.get("containerId") else None
        # Removing the service stops its task (SIGTERM, then SIGKILL after the grace period) and its
        # container; nothing of the browser outlives its tmpfs.
        with contextlib.suppress(docker.errors.NotFound):
            await self._call(lambda: self._docker().api.remove_service(service_id))
        return None

    async def _ended(self, state: dict[str, Any]) -> str | None:
        """How the browser ended, or None while it lives (or the swarm cannot be asked)."""
        try:
            task = await self._task(state.get("serviceId") or "")
        except (docker.errors.DockerException, RequestException):
            log.warning("swarm_unreachable", service_id=state.get("serviceId"))
            return None  # the manager is unreachable, not the browser: judge again later
        if task is None:
            return "The browser's Swarm service was removed"
        status = task.get("Status") or {}
        if task and status.get("State") in _LIVE_TASK_STATES and task.get("NodeID"):
            # A node that stopped answering keeps its tasks `running` in the manager's view: ask the node.
            try:
                node = await self._call(lambda: self._docker().api.inspect_node(task["NodeID"]))
            except docker.errors.NotFound:
                node = {"Status": {"State": "down"}}
            except (docker.errors.DockerException, RequestException):
                return None
            if (node.get("Status") or {}).get("State") == "down":
                name = (node.get("Description") or {}).get("Hostname") or task["NodeID"]
                return f"The browser's node {name} left the swarm (down)"
        if task and status.get("State") not in _LIVE_TASK_STATES:
            code = (status.get("ContainerStatus") or {}).get("ExitCode")
            why = status.get("Err") or status.get("Message") or ""
            return f"The browser's Swarm task ended: {status.get('State')} (exit code {code}) {why}".strip()
        return None

    async def is_alive(self, state: dict[str, Any]) -> bool:
        if not state.get("serviceId"):
            return False
        return await self._ended(state) is None

    async def wait_exit(self, state: dict[str, Any]) -> str:
        while True:
            ended = await self._ended(state)
            if ended is not None:
                return ended
            await asyncio.sleep(1.0)

    def browser_id(self, state: dict[str, Any]) -> str | None:
        return state.get("serviceId")

    async def list_browsers(self) -> list[ManagedBrowser]:
        """The services of this deployment, and the task containers on this node whose service is gone (the
        engine can leave one behind, `Created`, when a service is removed while its container is made)."""
        deployment = {"label": f"{LABEL}.deployment={self.deployment}"}
        # Containers first: a service created after this listing is in the services listed next.
        try:
            containers = await self._call(lambda: self._docker().api.containers(all=True, filters=deployment))
            services = await self._call(lambda: self._docker().api.services(filters=deployment))
        except (docker.errors.DockerException, RequestException) as exc:
            raise DriverError(f"The swarm's services cannot be listed: {exc}") from exc
        found = []
        for service in services:
            labels = (service.get("Spec") or {}).get("Labels") or {}
            with contextlib.suppress(KeyError, ValueError):
                found.append(
                    ManagedBrowser(
                        runtime_id=uuid.UUID(labels[f"{LABEL}.runtime"]),
                        browser_id=service["ID"],
                        state={"serviceId": service["ID"], "serviceName": service["Spec"]["Name"]},
                    )
                )
        known = {service["ID"] for service in services}
        for container in containers:
            labels = container.get("Labels") or {}
            service_id = labels.get("com.docker.swarm.service.id")
            if not service_id or service_id in known or container.get("State") == "removing":
                continue
            with contextlib.suppress(KeyError, ValueError):
                found.append(
                    ManagedBrowser(
                        runtime_id=uuid.UUID(labels[f"{LABEL}.runtime"]),
                        browser_id=container["Id"],
                        state={"containerId": container["Id"]},
                    )
                )
        return found

    # --- files: through the task's container, which runs on this node ---

    def download_areas(self, state: dict[str, Any]) -> list[str]:
        return [DOWNLOADS_DIR, "/tmp", "/home/chrome"]

    async def fetch_file(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        if not state.get("containerId"):
            return None
        return await super().fetch_file(state, path)

    async def _area_call(self, state: dict[str, Any], fn, *args):
        if not state.get("containerId"):
            raise DriverError("The browser's container is not on this node", code="browser.file_transfer_failed")
        return await super()._area_call(state, fn, *args)

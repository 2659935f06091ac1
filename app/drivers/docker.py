"""Docker driver: one hardened Chromium container per runtime, through the Docker Engine API.

The `docker` package is blocking, so every call runs on this driver's own small thread pool (never
the event loop, and never the default executor that the rest of the server shares).

Networking has two modes:
- `host`: the container shares the host's network and Chromium binds 127.0.0.1 on a free port the
  driver picks (tests, and a server running directly on the Docker host).
- a named network (compose): Chromium listens inside the container and the server reaches it at
  the container's address on that network. The address is an IP, not the container name, because
  Chromium refuses DevTools requests whose Host header is a name other than localhost.

Containers carry labels naming the deployment (one per database), runtime, run and the server
process that launched them; `list_browsers` finds them again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import structlog
from requests.exceptions import RequestException

from app.core.driver import AreaEntry, BrowserHandle, DriverError, LaunchSpec, ManagedBrowser, StateCallback
from app.drivers import display, extensions, file_area, viewport

log = structlog.get_logger(__name__)

LABEL = "io.bctrl"
CDP_PORT_IN_NETWORK = 9222
# Where Chromium may write on a read-only root filesystem (sizes cap what a page can fill).
# tmpfs pages count against the container's memory limit: together they stay well under it, and
# captured downloads are deleted from /downloads once the server has its copy.
TMPFS = {
    "/tmp": "rw,nosuid,nodev,size=512m",
    "/home/chrome": "rw,nosuid,nodev,size=64m",
    # Owned by the image's chrome user (uid 1000): a tmpfs is root's otherwise, and Chromium could not save there.
    "/downloads": "rw,nosuid,nodev,size=512m,uid=1000,gid=1000",
}
DOWNLOADS_DIR = "/downloads"
# The browser files API's workspace (app/drivers/file_area.py): made on first use, in the /tmp tmpfs.
WORKSPACE_DIR = "/tmp/workspace"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DockerDriver:
    name = "docker"
    browsers_outlive_server = True
    # Saved browser state between runs is not implemented for containers yet (docs/decisions.md).
    keeps_state = False

    def __init__(
        self,
        *,
        image: str,
        network: str,
        deployment: str,
        memory: str,
        cpus: float,
        pids_limit: int,
        shm_size: str,
        scratch_dir: Path,
        stop_timeout: float = 5.0,
    ) -> None:
        self.image, self.network, self.deployment = image, network, deployment
        self.memory, self.cpus, self.pids_limit, self.shm_size = memory, cpus, pids_limit, shm_size
        self.stop_timeout = stop_timeout
        # Where files copied out of containers wait until the server has kept them.
        self.scratch_dir = scratch_dir
        self.hostname = socket.gethostname()
        self.instance = uuid.uuid4().hex
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="docker")
        self._client: docker.DockerClient | None = None
        self.chrome = viewport.Chrome()  # the window chrome measured around the page, per image and mode
        # Set by the server once its egress proxy listens; reachable from containers on host networking.
        self.proxy_url: str | None = None
        self.serve_proxy = None

    # --- plumbing ---

    async def _call(self, fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                # Generous: creating a container copies the whole image on the vfs storage driver.
                self._client = docker.from_env(timeout=120)
            except docker.errors.DockerException as exc:
                raise DriverError(f"No Docker engine answers (DOCKER_HOST or /var/run/docker.sock): {exc}") from exc
        return self._client

    async def _container(self, container_id: str):
        """The container, or None when it is gone."""
        try:
            return await self._call(lambda: self._docker().containers.get(container_id))
        except docker.errors.NotFound:
            return None

    def _labels(self, spec: LaunchSpec) -> dict[str, str]:
        return {
            f"{LABEL}.deployment": self.deployment,
            f"{LABEL}.runtime": str(spec.runtime_id),
            f"{LABEL}.run": str(spec.run_id or ""),
            f"{LABEL}.server": f"{self.hostname}:{os.getpid()}",
        }

    # --- launch ---

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        host_mode = self.network == "host"
        port = _free_port() if host_mode else CDP_PORT_IN_NETWORK
        flags = []
        # The page's viewport as asked (app/drivers/viewport.py): the window around it, fitted once started.
        wanted = spec.viewport or (None if spec.window_size else viewport.DEFAULT_VIEWPORT)
        window = self.chrome.window_size(self.image, spec.headless, wanted) if wanted else spec.window_size
        if window:
            flags.append(f"--window-size={window[0]},{window[1]}")
        if spec.locale:
            flags.append(f"--lang={spec.locale}")
        name = f"bctrl-rt-{spec.runtime_id.hex[-12:]}-{uuid.uuid4().hex[:6]}"
        options: dict[str, Any] = dict(
            image=self.image,
            name=name,
            detach=True,
            labels=self._labels(spec),
            environment={
                "BCTRL_CDP_PORT": str(port),
                "BCTRL_CDP_BIND": "127.0.0.1" if host_mode else "0.0.0.0",
                "BCTRL_CHROMIUM_FLAGS": " ".join(flags),
                # Headful on an Xvfb display of the container's own (start-chromium.sh), a screen larger than the window.
                "BCTRL_HEADLESS": "1" if spec.headless else "0",
                "BCTRL_SCREEN": "x".join(map(str, display.screen_size(window or (1280, 800)))),
                "BCTRL_USER_AGENT": spec.user_agent or "",
                # On a named network the proxy's loopback address is not the container's.
                "BCTRL_PROXY_SERVER": (self.proxy_url or "") if host_mode else "",
            },
            mem_limit=self.memory,
            memswap_limit=self.memory,
            nano_cpus=int(self.cpus * 1e9),
            pids_limit=self.pids_limit,
            shm_size=self.shm_size,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            read_only=True,
            tmpfs=TMPFS,
            network_mode="host" if host_mode else None,
            network=None if host_mode else self.network,
        )
        if spec.extensions:  # uploaded extensions (app/drivers/extensions.py): a volume filled before start
            loaded = extensions.flags(extensions.container_dirs(spec.extensions))
            options["environment"]["BCTRL_CHROMIUM_FLAGS"] = " ".join([*flags, *loaded])
            options["mounts"] = [docker.types.Mount(extensions.CONTAINER_DIR, None, type="volume")]
        entrance = None
        if spec.proxy:  # its own proxy: an entrance of its own on the egress proxy, which chains to it
            if not host_mode or getattr(self, "proxy_entrance", None) is None or not self.proxy_url:
                raise DriverError(
                    "Browser proxies need the egress proxy, which only containers on host networking use "
                    "(BCTRL_DOCKER_NETWORK=host)",
                    code="runtime.proxy_unavailable",
                )
            entrance = options["environment"]["BCTRL_PROXY_SERVER"] = await self.proxy_entrance(spec.proxy)
        try:
            try:
                container = await self._call(lambda: self._docker().containers.create(**options))
            except BaseException:
                if entrance:
                    await self.proxy_release(entrance)
                raise
        except docker.errors.ImageNotFound:
            raise DriverError(
                f"The runtime image {self.image} is not on this Docker engine: build it with "
                "`docker compose build` or `make images`"
            ) from None
        except (docker.errors.DockerException, RequestException) as exc:
            raise DriverError(f"The Docker engine refused to create the browser container: {exc}") from exc
        state = {
            "containerId": container.id,
            "containerName": name,
            # The owner: the server process whose lease covers this browser's run (app/runtimes/processes.py).
            "serverInstance": self.instance,
            # An adopted browser's entrance is not served again (its upstream is not kept): it reaches nothing.
            "proxyUrl": self.proxy_url if host_mode and not entrance else None,
            "proxyEntrance": entrance,
            # The networkTraffic rules this run enforces (app/cdp/traffic.py, from the run observer).
            "traffic": spec.traffic,
        }
        try:
            if on_started is not None:
                await on_started(dict(state))
            if spec.extensions:
                await self._call(
                    lambda: container.put_archive(extensions.CONTAINER_DIR, extensions.tar_of(spec.extensions))
                )
            await self._call(container.start)
            http_url, ws_url = await asyncio.wait_for(self._wait_ready(container.id, port, host_mode), timeout)
        except (TimeoutError, DriverError, docker.errors.DockerException, RequestException) as exc:
            logs = await self._tail_logs(container.id)
            with contextlib.suppress(docker.errors.DockerException, RequestException):
                await self.stop(state)
            if isinstance(exc, DriverError):
                raise
            if isinstance(exc, TimeoutError):
                raise DriverError(f"Chromium in container {name} did not answer within {timeout:g}s{logs}") from None
            raise DriverError(f"The browser container {name} could not be started: {exc}{logs}") from exc
        except BaseException:
            await self.stop(state)
            raise
        if wanted:
            self.chrome.learn(self.image, spec.headless, await viewport.fit(ws_url, wanted))
        state.update(httpUrl=http_url, wsUrl=ws_url)
        return BrowserHandle(runtime_id=spec.runtime_id, http_url=http_url, ws_url=ws_url, state=state)

    async def _address(self, container_id: str, port: int, host_mode: bool) -> str | None:
        if host_mode:
            return f"127.0.0.1:{port}"
        container = await self._container(container_id)
        if container is None:
            return None
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        ip = (networks.get(self.network) or {}).get("IPAddress")
        return f"{ip}:{port}" if ip else None

    async def _wait_ready(self, container_id: str, port: int, host_mode: bool) -> tuple[str, str]:
        # verify=False: plain HTTP only, and it spares loading the TLS trust store on every launch.
        async with httpx.AsyncClient(timeout=2.0, trust_env=False, verify=False) as client:
            while True:
                container = await self._container(container_id)
                if container is None or container.status in ("exited", "dead"):
                    code = container.attrs["State"].get("ExitCode") if container else None
                    raise DriverError(
                        f"The browser container exited during start (code {code}){await self._tail_logs(container_id)}"
                    )
                address = await self._address(container_id, port, host_mode)
                if address:
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"http://{address}/json/version")
                        if response.status_code == 200:
                            # Chromium names itself by the Host header it was asked with; use our address.
                            path = "/" + response.json()["webSocketDebuggerUrl"].split("/", 3)[3]
                            return f"http://{address}", f"ws://{address}{path}"
                await asyncio.sleep(0.05)

    async def _tail_logs(self, container_id: str) -> str:
        try:
            container = await self._container(container_id)
            text = (await self._call(container.logs, tail=5)).decode(errors="replace").strip() if container else ""
        except (docker.errors.DockerException, RequestException):
            return ""
        return f"; its last log lines: {text}" if text else ""

    # --- stop, watch, find ---

    async def stop(self, state: dict[str, Any], save_to: Path | None = None) -> int | None:
        if state.get("proxyEntrance") and getattr(self, "proxy_release", None) is not None:
            await self.proxy_release(state["proxyEntrance"])
        container_id = state.get("containerId")
        if not container_id:
            return None
        try:
            # Force-remove kills and removes in one call; the container's filesystem is all tmpfs.
            await self._call(lambda: self._docker().api.remove_container(container_id, force=True, v=True))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise
        return None

    async def is_alive(self, state: dict[str, Any]) -> bool:
        container_id = state.get("containerId")
        if not container_id:
            return False
        try:
            container = await self._container(container_id)
        except (docker.errors.DockerException, RequestException):
            log.warning("docker_unreachable", container_id=container_id)
            return True  # the engine is down, not the browser: judge again later
        return container is not None and container.status in ("created", "running", "restarting")

    async def wait_exit(self, state: dict[str, Any]) -> str:
        container_id = state["containerId"]
        while True:
            try:
                container = await self._container(container_id)
            except (docker.errors.DockerException, RequestException):
                container = True  # engine unreachable: keep waiting
            if container is None:
                return "The browser container was removed"
            if container is not True and container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                oom = " (out of memory)" if container.attrs["State"].get("OOMKilled") else ""
                return f"The browser container exited with code {code}{oom}"
            await asyncio.sleep(1.0)

    def browser_id(self, state: dict[str, Any]) -> str | None:
        return state.get("containerId")

    def downloads_dir(self, run_id: uuid.UUID) -> str:
        return DOWNLOADS_DIR  # the container's own tmpfs: one run per container

    def download_areas(self, state: dict[str, Any]) -> list[str]:
        # The container's writable places are its own tmpfs mounts: nothing of the host is in its view.
        return [DOWNLOADS_DIR, "/tmp", "/home/chrome"]

    async def fetch_file(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        # Read through `exec` (it sees the container's tmpfs mounts; the archive API does not).
        container = await self._container(state.get("containerId") or "")
        if container is None:
            return None
        found = await self._call(container.exec_run, ["stat", "-c", "%s", "--", path], user="chrome")
        if found.exit_code != 0:
            return None
        size = int(found.output.strip() or 0)
        fd, temp = tempfile.mkstemp(prefix="bctrl-fetch-", dir=self.scratch_dir)

        def copy() -> int:
            api = self._docker().api
            exec_id = api.exec_create(container.id, ["cat", "--", path], user="chrome", stderr=False)["Id"]
            with os.fdopen(fd, "wb") as out:
                for chunk in api.exec_start(exec_id, stream=True):
                    out.write(chunk)
            return api.exec_inspect(exec_id)["ExitCode"]

        try:
            code = await self._call(copy)
            if code != 0 or await asyncio.to_thread(os.path.getsize, temp) != size:
                raise DriverError(f"Copying {path} out of the browser container was cut short")
        except BaseException:
            os.unlink(temp)
            raise
        if path.startswith(DOWNLOADS_DIR + "/"):
            # Our own downloads directory lives in the container's memory: free it.
            await self._call(container.exec_run, ["rm", "-f", "--", path], user="chrome")
        return Path(temp), True

    # --- the browser's file area (app/drivers/file_area.py): its tmpfs mounts, through exec ---

    def file_areas(self, state: dict[str, Any], runtime_id: uuid.UUID) -> dict[str, str]:
        return {"downloads": DOWNLOADS_DIR, "workspace": WORKSPACE_DIR}

    async def _area_call(self, state: dict[str, Any], fn, *args):
        container_id = state.get("containerId") or ""
        try:
            return await self._call(fn, self._docker(), container_id, *args)
        except docker.errors.NotFound:
            raise DriverError("The browser container is gone", code="browser.file_transfer_failed") from None
        except (docker.errors.DockerException, RequestException, OSError) as exc:
            if isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.ENOTEMPTY:
                raise
            raise DriverError(
                f"The browser container's files are unreachable: {exc}", code="browser.file_transfer_failed"
            ) from exc

    async def area_list(self, state: dict[str, Any], root: str, rel: str) -> list[AreaEntry]:
        return await self._area_call(state, file_area.docker_list, root, rel)

    async def area_open(self, state: dict[str, Any], root: str, rel: str) -> Any:
        return await self._area_call(state, file_area.docker_open, root, rel, self.scratch_dir)

    async def area_put(
        self, state: dict[str, Any], root: str, rel: str, source: Path, overwrite: bool, create_parents: bool
    ) -> None:
        await self._area_call(state, file_area.docker_put, root, rel, source, overwrite, create_parents)

    async def area_move(
        self, state: dict[str, Any], src_root: str, src: str, dst_root: str, dst: str, overwrite: bool
    ) -> None:
        await self._area_call(state, file_area.docker_move, src_root, src, dst_root, dst, overwrite)

    async def area_delete(self, state: dict[str, Any], root: str, rel: str, recursive: bool) -> None:
        await self._area_call(state, file_area.docker_delete, root, rel, recursive)

    async def list_browsers(self) -> list[ManagedBrowser]:
        def find():
            return self._docker().containers.list(all=True, filters={"label": f"{LABEL}.deployment={self.deployment}"})

        found = []
        for container in await self._call(find):
            with contextlib.suppress(KeyError, ValueError):
                found.append(
                    ManagedBrowser(
                        runtime_id=uuid.UUID(container.labels[f"{LABEL}.runtime"]),
                        browser_id=container.id,
                        state={"containerId": container.id, "containerName": container.name},
                    )
                )
        return found

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._call(self._client.close)
        self._pool.shutdown(wait=False, cancel_futures=True)

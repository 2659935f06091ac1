"""Local driver: one headless Chromium process per runtime on this machine, bound to loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import structlog

from app.drivers.base import BrowserHandle, DriverError, LaunchSpec, StateCallback

log = structlog.get_logger(__name__)

# Keep the browser off the network for its own services: this machine reaches nothing but
# package registries, and a user's browser should not phone home anyway.
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--password-store=basic",
    "--use-mock-keychain",
)
BASE_FLAGS = (
    "--headless=new",
    "--remote-debugging-address=127.0.0.1",
    # Port 0 lets Chromium pick a free port and write it to DevToolsActivePort: no race for ports.
    "--remote-debugging-port=0",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
)


def chromium_args(profile_dir: Path, spec: LaunchSpec, as_root: bool) -> list[str]:
    args = [*BASE_FLAGS, *QUIET_FLAGS, f"--user-data-dir={profile_dir}"]
    if as_root:
        args.append("--no-sandbox")
    if spec.window_size:
        args.append(f"--window-size={spec.window_size[0]},{spec.window_size[1]}")
    if spec.locale:
        args.append(f"--lang={spec.locale}")
    args.append("about:blank")
    return args


def _pid_matches(pid: int, profile_dir: str) -> bool:
    """The pid is still our Chromium (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; it only waits to be reaped.
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return f"--user-data-dir={profile_dir}".encode() in cmdline


class LocalDriver:
    name = "local"
    browsers_outlive_server = False

    def __init__(self, chromium_path: str | None, data_dir: Path, stop_timeout: float = 5.0) -> None:
        self.chromium_path = chromium_path
        self.data_dir = data_dir.resolve()
        self.profiles_dir = self.data_dir / "profiles"
        self.stop_timeout = stop_timeout
        self.hostname = socket.gethostname()
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._client: httpx.AsyncClient | None = None
        # Tells this driver's browsers from those of another server in the same process (tests do that).
        self.instance = uuid.uuid4().hex

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        binary = self.chromium_path
        if not binary or not os.access(binary, os.X_OK):
            raise DriverError(
                "Chromium is not installed on this host: run `apt-get install chromium` "
                "or set BCTRL_CHROMIUM_PATH to a Chromium or Chrome binary")
        # A directory per launch: a late cleanup of an earlier launch can never touch this one.
        profile_dir = self.profiles_dir / f"{spec.runtime_id}.{uuid.uuid4().hex[:8]}"
        try:
            profile_dir.mkdir(parents=True)
            log_file = open(f"{profile_dir}.log", "wb")  # noqa: SIM115
        except OSError as exc:
            raise DriverError(f"Cannot create the browser profile under {self.profiles_dir}: {exc}") from exc
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, *chromium_args(profile_dir, spec, os.geteuid() == 0),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True,  # its own process group, so stop kills renderers too
            )
        except OSError as exc:
            log_file.close()
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise DriverError(f"Chromium could not be started ({binary}): {exc}") from exc
        finally:
            if not log_file.closed:
                log_file.close()
        state = {"pid": proc.pid, "profileDir": str(profile_dir), "host": self.hostname, "serverPid": os.getpid(),
                 "serverInstance": self.instance}
        self._procs[proc.pid] = proc
        try:
            if on_started is not None:
                await on_started(dict(state))
            http_url, ws_url = await asyncio.wait_for(self._wait_ready(proc, profile_dir), timeout)
        except (TimeoutError, DriverError) as exc:
            await self.stop(state)
            if isinstance(exc, DriverError):
                raise
            raise DriverError(f"Chromium did not answer on its debugging port within {timeout:g}s") from None
        except BaseException:
            await self.stop(state)
            raise
        state.update(port=int(http_url.rsplit(":", 1)[1]), wsUrl=ws_url)
        return BrowserHandle(runtime_id=spec.runtime_id, http_url=http_url, ws_url=ws_url, state=state)

    def _http(self) -> httpx.AsyncClient:
        # One client for every launch: building one loads the TLS trust store, tens of milliseconds of
        # CPU while the browser starts (plain HTTP to loopback needs none of it).
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=2.0, trust_env=False, verify=False)
        return self._client

    async def _wait_ready(self, proc: asyncio.subprocess.Process, profile_dir: Path) -> tuple[str, str]:
        port_file = profile_dir / "DevToolsActivePort"
        client = self._http()
        while True:
            if proc.returncode is not None:
                raise DriverError(f"Chromium exited during start with code {proc.returncode}; "
                                  f"see {profile_dir}.log")
            port = _read_port(port_file)
            if port:
                http_url = f"http://127.0.0.1:{port}"
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{http_url}/json/version")
                    if response.status_code == 200:
                        return http_url, response.json()["webSocketDebuggerUrl"]
            await asyncio.sleep(0.01)

    async def stop(self, state: dict[str, Any]) -> None:
        pid, profile_dir = state.get("pid"), state.get("profileDir")
        if state.get("host") not in (None, self.hostname) or not profile_dir:
            return  # another host's browser, or nothing was started
        # Signal only processes that are provably this browser: its command line names its profile.
        if pid and _pid_matches(pid, profile_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            if not await self._wait_gone(pid, profile_dir, self.stop_timeout):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                await self._wait_gone(pid, profile_dir, self.stop_timeout)
        for straggler in _pids_with(f"--user-data-dir={profile_dir}"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(straggler, signal.SIGKILL)
        proc = self._procs.pop(pid, None) if pid else None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
        await asyncio.to_thread(shutil.rmtree, profile_dir, True)
        with contextlib.suppress(OSError):
            os.unlink(f"{profile_dir}.log")

    async def _wait_gone(self, pid: int, profile_dir: str, timeout: float) -> bool:
        proc = self._procs.get(pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.returncode is not None:
                    return True
            elif not _pid_matches(pid, profile_dir):
                return True
            await asyncio.sleep(0.05)
        return False

    async def is_alive(self, state: dict[str, Any]) -> bool:
        pid, profile_dir = state.get("pid"), state.get("profileDir")
        if state.get("host") != self.hostname or not pid or not profile_dir:
            return False
        proc = self._procs.get(pid)
        if proc is not None:
            return proc.returncode is None
        return _pid_matches(pid, profile_dir)

    async def has_owner(self, state: dict[str, Any]) -> bool:
        owner = state.get("serverPid")
        if not owner or state.get("host") != self.hostname or state.get("serverInstance") == self.instance:
            return False
        if owner == os.getpid():
            return True  # another server living in this same process
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def adopted_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "serverPid": os.getpid(), "serverInstance": self.instance}

    def browser_id(self, state: dict[str, Any]) -> str | None:
        return state.get("profileDir")

    def downloads_dir(self, run_id: uuid.UUID) -> str:
        path = self.data_dir / "downloads" / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    async def fetch_file(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        return (Path(path), False) if Path(path).is_file() else None

    async def list_browsers(self) -> list:
        return []  # not tracked: local browsers are found through the database's runtime rows only

    async def wait_exit(self, state: dict[str, Any]) -> str:
        pid = state.get("pid")
        proc = self._procs.get(pid) if pid else None
        if proc is not None:
            code = await proc.wait()
            return f"Chromium exited with code {code}" if code >= 0 else f"Chromium was killed by signal {-code}"
        while await self.is_alive(state):
            await asyncio.sleep(1.0)
        return "Chromium is no longer running"

    async def close(self) -> None:
        self._procs.clear()
        if self._client is not None:
            await self._client.aclose()


def _pids_with(fragment: str) -> list[int]:
    """Live processes whose command line contains `fragment` (renderers and helpers of a browser)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if fragment.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _read_port(port_file: Path) -> int | None:
    try:
        first = port_file.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() and first != "0" else None

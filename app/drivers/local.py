"""Local driver: one headless Chromium process per runtime on this machine, bound to loopback.

Isolation (a root server, `BCTRL_BROWSER_ISOLATION=auto`): each runtime's Chromium runs as a uid of
its own (derived from the runtime id, no passwd entry needed), with Chromium's own sandbox, in a
private mount namespace where
- /etc/chromium (and /etc/opt/chrome) show this server's managed policy (app/drivers/policy.py),
  bind-mounted there, so the host's /etc is never changed;
- the data directory is covered by an empty tmpfs (it is also 0700 root on the host);
- /tmp is a private tmpfs (downloads a client points at /tmp land there, in the browser's own view).
Everything a browser may write lives in the browser root (`BCTRL_BROWSER_ROOT`, 0711 root), outside
the data directory:  <root>/profiles/<runtime>.<launch>/ (profile and HOME), <root>/downloads/<run>/,
<root>/files/<runtime>/ (runtime files), each 0700 and owned by that runtime's uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import structlog

from app.core.driver import AreaEntry, BrowserHandle, DriverError, LaunchSpec, ManagedBrowser, StateCallback
from app.drivers import chromium, display, extensions, file_area, profile, viewport
from app.drivers.policy import managed_policy

log = structlog.get_logger(__name__)

# Every switch of app/drivers/chromium.py (shared with the runtime image), features merged.
QUIET_FLAGS = tuple(chromium.behaviour_flags())
BASE_FLAGS = (
    "--remote-debugging-address=127.0.0.1",
    # Port 0 lets Chromium pick a free port and write it to DevToolsActivePort: no race for ports.
    "--remote-debugging-port=0",
)
HEADLESS_FLAG = "--headless=new"
HEADFUL_FLAG = "--test-type"


# Browser uids: one per runtime, from a range no distribution hands out to users (below 2**31).
UID_BASE, UID_SPAN = 1_000_000_000, 1_000_000_000
# The policy directories Chromium builds read (Debian's chromium, Google Chrome).
POLICY_HOMES = ("/etc/chromium", "/etc/opt/chrome")
# Runs in the new mount namespace as root, then becomes the browser's uid for good. Arguments:
# uid, the data dir to hide, then pairs of (prepared dir, policy home) up to "--", then the command.
SANDBOX_SCRIPT = r"""set -e
uid=$1; hide=$2; shift 2
mount -t tmpfs -o mode=0000,size=4k,ro bctrl-hidden "$hide"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=1g bctrl-tmp /tmp
while [ "$1" != "--" ]; do mount --bind -o ro "$1" "$2"; shift 2; done
shift
exec setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
"""


def browser_uid(runtime_id: uuid.UUID) -> int:
    return UID_BASE + int.from_bytes(hashlib.sha256(runtime_id.bytes).digest()[:8], "big") % UID_SPAN


def _userns_available() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


def chromium_args(
    profile_dir: Path,
    spec: LaunchSpec,
    as_root: bool,
    proxy_url: str | None = None,
    sandbox: bool = False,
    *,
    window: tuple[int, int] | None = None,
    user_agent: str | None = None,
) -> list[str]:
    """`window`: the window size that gives the spec's viewport (app/drivers/viewport.py)."""
    args = [*BASE_FLAGS, *QUIET_FLAGS, f"--user-data-dir={profile_dir}"]
    if spec.headless:
        args.insert(0, HEADLESS_FLAG)
    else:
        # Headful Chromium ignores --disable-infobars: without this its first tab alone shows a 56 px
        # "unsupported command-line flag" bar, and new tabs would get a taller viewport than the first.
        args.append(HEADFUL_FLAG)
    if user_agent:
        args.append(f"--user-agent={user_agent}")
    if as_root and not sandbox:
        args.append("--no-sandbox")
    if proxy_url:
        args += [f"--proxy-server={proxy_url}", "--proxy-bypass-list=<-loopback>"]
    if spec.web_rtc_proxy_only:  # also the managed policy's, where it applies (isolated browsers)
        args.append("--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
    window = window or spec.window_size
    if window:
        args.append(f"--window-size={window[0]},{window[1]}")
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
    keeps_state = True

    def __init__(
        self,
        chromium_path: str | None,
        data_dir: Path,
        stop_timeout: float = 5.0,
        *,
        browser_root: Path | None = None,
        isolation: str = "auto",
        max_state_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.chromium_path = chromium_path
        self.data_dir = data_dir.resolve()
        self.root = (browser_root or self.data_dir / "browsers").resolve()
        self.profiles_dir = self.root / "profiles"
        self.max_state_bytes = max_state_bytes
        self.stop_timeout = stop_timeout
        self.hostname = socket.gethostname()
        self.isolation = isolation
        self.isolated = isolation == "auto" and os.geteuid() == 0
        self.sandbox = self.isolated and _userns_available()
        # Set by the server once its egress proxy listens (app/egress); None: no proxy.
        self.proxy_url: str | None = None
        self.serve_proxy = None
        self._policy_dirs: list[tuple[str, str]] | None = None
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._displays: dict[int, asyncio.subprocess.Process] = {}  # Xvfb of headful browsers, by pid
        self.chrome = viewport.Chrome()
        self._ports: dict[str, int] = {}  # profile dir -> DevTools port of browsers this process launched
        self._client: httpx.AsyncClient | None = None
        # Tells this driver's browsers from those of another server in the same process (tests do that).
        self.instance = uuid.uuid4().hex

    # --- the browser root ---

    def _refusal(self) -> str | None:
        if self.isolation == "auto" and os.geteuid() != 0:
            return (
                "Browser isolation needs a root server (each browser runs as a uid of its own); run the "
                "server as root, use the Docker driver, or set BCTRL_BROWSER_ISOLATION=none if every API "
                "key holder may read this host's files"
            )
        if self.isolated and (self.root.is_relative_to(self.data_dir) or self.root.is_relative_to("/tmp")):
            return (
                f"BCTRL_BROWSER_ROOT ({self.root}) must be outside the data directory and /tmp "
                "(both are hidden from browsers)"
            )
        if self.isolated and not (shutil.which("unshare") and shutil.which("setpriv")):
            return "Browser isolation needs util-linux's unshare and setpriv (apt-get install util-linux)"
        return None

    def _prepare_root(self) -> None:
        """The browser root and its shared directories: 0711 root, so a browser reaches only its own."""
        for path in (self.root, self.profiles_dir, self.root / "downloads", self.root / "files"):
            path.mkdir(parents=True, exist_ok=True)
            if self.isolated:
                os.chown(path, 0, 0)
                path.chmod(0o711)
        # Every ancestor must be traversable by browser uids.
        if self.isolated:
            for parent in self.root.parents:
                if not os.stat(parent).st_mode & stat.S_IXOTH:
                    raise DriverError(
                        f"Browsers cannot reach BCTRL_BROWSER_ROOT: {parent} is not traversable "
                        "by other users (chmod o+x it, or choose another browser root)"
                    )

    def _policy_mounts(self, proxy_url: str | None = None) -> list[tuple[str, str]]:
        """(prepared copy, policy home) pairs: each home's own files plus our managed policy, read-only.
        A browser with a proxy of its own (`proxy_url`: its entrance) gets a copy of its own."""
        own = proxy_url not in (None, self.proxy_url)
        if self._policy_dirs is not None and not own:
            return self._policy_dirs
        base = self.root / f"etc-{self.instance[:8]}"
        if own:
            base = base.with_name(f"{base.name}-{proxy_url.rsplit(':', 1)[1]}")
        shutil.rmtree(base, ignore_errors=True)
        pairs = []
        homes = [h for h in POLICY_HOMES if os.path.isdir(h)]
        if not homes:
            Path(POLICY_HOMES[0]).mkdir(parents=True, exist_ok=True)  # an empty mount point, nothing else
            homes = [POLICY_HOMES[0]]
        for home in homes:
            copy = base / home.strip("/").replace("/", "-")
            shutil.copytree(home, copy, symlinks=True)
            managed = copy / "policies" / "managed"
            managed.mkdir(parents=True, exist_ok=True)
            (managed / "bctrl.json").write_text(json.dumps(managed_policy(proxy_url or self.proxy_url), indent=2))
            for path in [copy, *copy.rglob("*")]:
                os.chown(path, 0, 0, follow_symlinks=False)
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
            pairs.append((str(copy), home))
        base.chmod(0o755)
        if not own:
            self._policy_dirs = pairs
        return pairs

    def _own_dir(self, path: Path, uid: int | None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(path, uid, uid)
        path.chmod(0o700)

    def files_dir(self, runtime_id: uuid.UUID) -> Path:
        """The runtime's file area (staged uploads, files the browser leaves): readable by its browser only."""
        return self.root / "files" / str(runtime_id)

    def devtools_ports(self) -> list[int]:
        """DevTools ports of the browsers this process runs: a page may not reach another browser's."""
        return list(self._ports.values())

    # --- launch ---

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        binary = self.chromium_path
        if not binary or not os.access(binary, os.X_OK):
            raise DriverError(
                "Chromium is not installed on this host: run `apt-get install chromium` "
                "or set BCTRL_CHROMIUM_PATH to a Chromium or Chrome binary"
            )
        refusal = self._refusal()
        if refusal:
            raise DriverError(refusal, code="runtime.isolation_unavailable")
        uid = browser_uid(spec.runtime_id) if self.isolated else None
        # A directory per launch: a late cleanup of an earlier launch can never touch this one.
        profile_dir = self.profiles_dir / f"{spec.runtime_id}.{uuid.uuid4().hex[:8]}"
        downloads = self.root / "downloads" / str(spec.run_id or spec.runtime_id)
        try:
            await asyncio.to_thread(self._prepare_root)
            mounts = await asyncio.to_thread(self._policy_mounts) if self.isolated else []
            for path in (profile_dir, downloads, self.files_dir(spec.runtime_id)):
                self._own_dir(path, uid)
            # Root's alone: other browsers' uids may traverse the profiles directory.
            log_file = os.fdopen(os.open(f"{profile_dir}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        except OSError as exc:
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise DriverError(f"Cannot create the browser profile under {self.profiles_dir}: {exc}") from exc
        # The page's viewport (window.innerWidth/innerHeight): the one asked, else the default; a bare
        # window size (no viewport) is taken as the window's.
        wanted = spec.viewport or (None if spec.window_size else viewport.DEFAULT_VIEWPORT)
        state_warning = None
        if spec.restore_from is not None:
            try:
                await asyncio.to_thread(profile.restore, spec.restore_from, profile_dir, uid)
            except profile.CorruptState as exc:
                # Start clean rather than not at all; the caller tells the user.
                state_warning = f"The saved state could not be restored ({exc}); this run started clean"
                await asyncio.to_thread(shutil.rmtree, profile_dir, True)
                self._own_dir(profile_dir, uid)
        state = {
            "profileDir": str(profile_dir),
            "downloadsDir": str(downloads),
            "host": self.hostname,
            # The owner: the server process whose lease covers this browser's run (app/runtimes/processes.py).
            "serverInstance": self.instance,
            "uid": uid,
            "proxyUrl": self.proxy_url,
            # The networkTraffic rules this run enforces (app/cdp/traffic.py, from the run observer).
            "traffic": spec.traffic,
        }
        proxy_url = self.proxy_url
        try:
            if spec.proxy:
                # Its own proxy: an entrance of its own on the egress proxy, which chains to it (app/egress).
                if getattr(self, "proxy_entrance", None) is None or not self.proxy_url:
                    raise DriverError("Browser proxies need the egress proxy", code="runtime.proxy_unavailable")
                proxy_url = state["proxyUrl"] = state["proxyEntrance"] = await self.proxy_entrance(spec.proxy)
                if self.isolated:
                    mounts = await asyncio.to_thread(self._policy_mounts, proxy_url)
            # Recorded before the process exists: a server killed from here on leaves a trace to clean up.
            if on_started is not None:
                await on_started(dict(state))
            # The window that gives the page the viewport asked (the chrome around it measured before).
            window = self.chrome.window_size(binary, spec.headless, wanted) if wanted else None
            env = self._browser_env(profile_dir)
            if not spec.headless:
                shown, display_proc = await display.start(
                    profile_dir, window or spec.window_size or (1280, 800), uid, log_file
                )
                state["displayPid"] = shown.pid
                self._displays[shown.pid] = display_proc
                env.update(shown.env)
            args = chromium_args(
                profile_dir,
                spec,
                os.geteuid() == 0,
                proxy_url,
                self.sandbox,
                window=window,
                user_agent=spec.user_agent or await self._user_agent(binary),
            )
            # Uploaded extensions, copied into this launch's profile (app/drivers/extensions.py): before the URL.
            args[-1:-1] = await asyncio.to_thread(extensions.stage_local, spec.extensions, profile_dir, uid)
            args = [*chromium.merge_features(args[:-1]), args[-1]]
            if self.isolated:
                command = [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    SANDBOX_SCRIPT,
                    "bctrl-browser",
                    str(uid),
                    str(self.data_dir),
                    *[p for pair in mounts for p in pair],
                    "--",
                    binary,
                    *args,
                ]
            else:
                command = [binary, *args]
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,  # its own process group, so stop kills renderers too
            )
        except display.DisplayError as exc:
            await self.stop(state)
            raise DriverError(str(exc)) from None
        except OSError as exc:
            await self.stop(state)
            raise DriverError(f"Chromium could not be started ({binary}): {exc}") from exc
        except BaseException:
            await self.stop(state)
            raise
        finally:
            if not log_file.closed:
                log_file.close()
        state["pid"] = proc.pid
        self._procs[proc.pid] = proc
        try:
            http_url, ws_url = await asyncio.wait_for(self._wait_ready(proc, profile_dir), timeout)
        except (TimeoutError, DriverError) as exc:
            await self.stop(state)
            if isinstance(exc, DriverError):
                raise
            raise DriverError(f"Chromium did not answer on its debugging port within {timeout:g}s") from None
        except BaseException:
            await self.stop(state)
            raise
        if wanted:
            self.chrome.learn(binary, spec.headless, await viewport.fit(ws_url, wanted))
        port = int(http_url.rsplit(":", 1)[1])
        self._ports[str(profile_dir)] = port
        state.update(port=port, wsUrl=ws_url)
        return BrowserHandle(
            runtime_id=spec.runtime_id, http_url=http_url, ws_url=ws_url, state=state, state_warning=state_warning
        )

    async def _user_agent(self, binary: str) -> str | None:
        """A headed Chrome's user agent for this binary's version (never `HeadlessChrome`)."""
        major = await asyncio.to_thread(chromium.binary_major_version, binary)
        return chromium.user_agent(major) if major else None

    def _browser_env(self, profile_dir: Path) -> dict[str, str]:
        """Only what Chromium needs: never the server's own environment (keys, database URLs)."""
        env = {
            "HOME": str(profile_dir),
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "XDG_CONFIG_HOME": str(profile_dir / ".config"),
            "XDG_CACHE_HOME": str(profile_dir / ".cache"),
            "TMPDIR": "/tmp",
        }
        for name in ("LANG", "LC_ALL", "TZ", "FONTCONFIG_PATH", "DISPLAY"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

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
                raise DriverError(f"Chromium exited during start with code {proc.returncode}; see {profile_dir}.log")
            port = _read_port(port_file)
            if port:
                http_url = f"http://127.0.0.1:{port}"
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{http_url}/json/version")
                    if response.status_code == 200:
                        return http_url, response.json()["webSocketDebuggerUrl"]
            await asyncio.sleep(0.01)

    async def stop(self, state: dict[str, Any], save_to: Path | None = None) -> int | None:
        pid, profile_dir = state.get("pid"), state.get("profileDir")
        if state.get("host") not in (None, self.hostname) or not profile_dir:
            return None  # another host's browser, or nothing was started
        if save_to is not None and pid and state.get("wsUrl"):
            # Closed the way a user closes it, so it writes its cookies and storage out (a signal to its
            # process group stops the network process before it flushes the cookie store).
            await profile.close_gracefully(state["wsUrl"])
            await self._wait_gone(pid, profile_dir, self.stop_timeout)
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
        await self._stop_display(state, profile_dir)
        proc = self._procs.pop(pid, None) if pid else None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
        self._ports.pop(profile_dir, None)
        if state.get("proxyEntrance") and getattr(self, "proxy_release", None) is not None:
            await self.proxy_release(state["proxyEntrance"])
            port = state["proxyEntrance"].rsplit(":", 1)[1]
            await asyncio.to_thread(shutil.rmtree, self.root / f"etc-{self.instance[:8]}-{port}", True)
        saved = None
        try:
            if save_to is not None:
                # The browser has exited, so its cookies and storage are on disk.
                saved = await asyncio.to_thread(profile.archive, Path(profile_dir), save_to, self.max_state_bytes)
        finally:
            await asyncio.to_thread(shutil.rmtree, profile_dir, True)
        # The run's downloads were copied out by the observer before the stop (lifecycle waits for it).
        downloads = state.get("downloadsDir")
        if downloads and Path(downloads).parent == self.root / "downloads":
            await asyncio.to_thread(shutil.rmtree, downloads, True)
        with contextlib.suppress(OSError):
            os.unlink(f"{profile_dir}.log")
        return saved

    async def _stop_display(self, state: dict[str, Any], profile_dir: str) -> None:
        """The headful browser's Xvfb goes with it (found by its auth file's path if the pid is not known)."""
        pids = set(_pids_with(f"{profile_dir}/{display.DISPLAY_DIR}/"))
        if state.get("displayPid") in pids:
            pids.discard(state["displayPid"])
            display.stop_pid(state["displayPid"])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc = self._displays.pop(state.get("displayPid") or 0, None)
        if proc is not None:
            display.stop_pid(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self.stop_timeout)

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

    def browser_id(self, state: dict[str, Any]) -> str | None:
        return state.get("profileDir")

    def downloads_dir(self, run_id: uuid.UUID) -> str:
        return str(self.root / "downloads" / str(run_id))  # made at launch, owned by the browser's uid

    def download_areas(self, state: dict[str, Any]) -> list[str]:
        """Where, in the browser's view, files may be turned into artifacts: its run's downloads
        directory and, when isolated, its private /tmp (where clients such as Playwright point downloads)."""
        areas = [state["downloadsDir"]] if state.get("downloadsDir") else []
        if self.isolated and state.get("uid"):
            areas.append("/tmp")
        return areas

    async def fetch_file(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        """A copy of a regular file the browser wrote inside one of its download areas, read without
        following any symbolic link (a browser could plant one pointing at the server's own files)."""
        if state.get("host") not in (None, self.hostname):
            return None
        return await asyncio.to_thread(self._copy_out, state, path)

    def _copy_out(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        clean = os.path.normpath(path)
        area = next(
            (
                a
                for a in self.download_areas(state)
                if clean.startswith(a.rstrip("/") + "/") and ".." not in clean.split("/")
            ),
            None,
        )
        if area is None:
            return None
        pid = state.get("pid")
        if area == "/tmp":
            # The browser's private /tmp exists only in its own mount namespace.
            if not pid or not _pid_matches(pid, state.get("profileDir") or "\0"):
                return None
            start = f"/proc/{pid}/root"
        else:
            start = "/"
        try:
            fd = os.open(start, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            for part in [p for p in clean.split("/") if p][:-1]:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nxt
            src = os.open(clean.rsplit("/", 1)[1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        with os.fdopen(src, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            out_fd, temp = tempfile.mkstemp(prefix="bctrl-fetch-", dir=self.root)
            with os.fdopen(out_fd, "wb") as out:
                shutil.copyfileobj(f, out, 1024 * 1024)
        return Path(temp), True

    # --- the browser's file area (app/drivers/file_area.py): its run's downloads and its runtime files ---

    def file_areas(self, state: dict[str, Any], runtime_id: uuid.UUID) -> dict[str, str]:
        areas = {"workspace": str(self.files_dir(runtime_id))}
        if state.get("downloadsDir"):
            areas["downloads"] = state["downloadsDir"]
        return areas

    async def area_list(self, state: dict[str, Any], root: str, rel: str) -> list[AreaEntry]:
        return await asyncio.to_thread(file_area.host_list, root, rel)

    async def area_open(self, state: dict[str, Any], root: str, rel: str) -> Any:
        return await asyncio.to_thread(file_area.host_open, root, rel)

    async def area_put(
        self, state: dict[str, Any], root: str, rel: str, source: Path, overwrite: bool, create_parents: bool
    ) -> None:
        uid = state.get("uid")
        await asyncio.to_thread(file_area.host_put, root, rel, source, overwrite, create_parents, uid)

    async def area_move(
        self, state: dict[str, Any], src_root: str, src: str, dst_root: str, dst: str, overwrite: bool
    ) -> None:
        await asyncio.to_thread(file_area.host_move, src_root, src, dst_root, dst, overwrite)

    async def area_delete(self, state: dict[str, Any], root: str, rel: str, recursive: bool) -> None:
        await asyncio.to_thread(file_area.host_delete, root, rel, recursive)

    async def list_browsers(self) -> list[ManagedBrowser]:
        """Every Chromium on this host whose profile is in this deployment's browser root, whoever launched
        it: a browser left by a server killed mid-launch is found here and ended by the sweep."""
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> list[ManagedBrowser]:
        marker = f"--user-data-dir={self.profiles_dir}/".encode()
        leaders: dict[str, tuple[int, bool]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                if marker not in cmdline:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[0] == "Z":
                continue
            arg = next((a for a in cmdline.split(b"\0") if a.startswith(marker)), None)
            if arg is None:
                continue
            profile = arg.split(b"=", 1)[1].decode(errors="replace")
            pid = int(entry.name)
            leader = int(fields[2]) == pid  # the process group's leader is the browser itself
            known = leaders.get(profile)
            if known is None or (leader and not known[1]) or (leader == known[1] and pid < known[0]):
                leaders[profile] = (pid, leader)
        found = []
        for profile, (pid, _) in leaders.items():
            try:
                runtime_id = uuid.UUID(Path(profile).name.split(".", 1)[0])
            except ValueError:
                continue
            found.append(
                ManagedBrowser(
                    runtime_id=runtime_id,
                    browser_id=profile,
                    state={"pid": pid, "profileDir": profile, "host": self.hostname},
                )
            )
        return found

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

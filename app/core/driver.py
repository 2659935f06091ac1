"""The driver protocol: how the control plane launches and stops a browser.

Drivers know nothing about accounts, spaces or runs. They launch, stop and watch a browser
identified by a runtime id, and describe it with a JSON-able `state` the database keeps so that
another server process (or this one after a restart) can find the browser again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LaunchSpec:
    runtime_id: uuid.UUID
    run_id: uuid.UUID | None = None
    window_size: tuple[int, int] | None = None
    locale: str | None = None
    # A saved state archive (app/drivers/profile.py) to start from, for drivers that keep state.
    restore_from: Path | None = None
    # What the page's viewport must be (window.innerWidth/innerHeight), when asked; drivers size the
    # window so that the page gets exactly this.
    viewport: tuple[int, int] | None = None
    # False: a headful browser on a virtual display.
    headless: bool = True
    # The user agent to present (None: the browser's own, without "HeadlessChrome").
    user_agent: str | None = None
    # The upstream proxy the browser's traffic leaves through (a URL, credentials included), after
    # the egress policy; None: direct.
    proxy: str | None = None
    # WebRTC may use only the proxied route.
    web_rtc_proxy_only: bool = False
    # Unpacked extensions to load: directories on the host the driver copies or mounts.
    extensions: tuple[str, ...] = ()
    # Network traffic rules (the current generation's networkTraffic, validated), enforced in the browser.
    traffic: dict[str, Any] | None = None
    # Where it must run, for drivers that place browsers on nodes (a node label value); None: anywhere.
    location: str | None = None


@dataclass(frozen=True)
class BrowserHandle:
    runtime_id: uuid.UUID
    # Base of the browser's own DevTools HTTP endpoint, e.g. http://127.0.0.1:9222
    http_url: str
    # The browser-level CDP websocket, e.g. ws://127.0.0.1:9222/devtools/browser/<id>
    ws_url: str
    state: dict[str, Any] = field(default_factory=dict)
    # Set when the saved state could not be restored and the browser started clean.
    state_warning: str | None = None


@dataclass(frozen=True)
class ManagedBrowser:
    """A browser the driver can see on its host, whether or not the database still knows it."""

    runtime_id: uuid.UUID
    browser_id: str
    state: dict[str, Any]


StateCallback = Callable[[dict[str, Any]], Awaitable[None]]


class DriverError(Exception):
    """The browser host could not do what was asked; `code` is a stable error code."""

    def __init__(self, message: str, code: str = "runtime.host_unavailable") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- a browser's writable file area (its downloads and workspace), for the browser files API ---------


@dataclass(frozen=True)
class AreaEntry:
    """One entry of a directory in a browser's file area."""

    name: str
    kind: str  # file, directory, symlink, other
    size_bytes: int | None = None
    modified_at: float | None = None  # seconds since the epoch


class AreaRefused(Exception):
    """The path leaves the area on the browser's side (a symbolic link pointing elsewhere)."""


class AreaDriver(Protocol):
    """File operations inside the directories `file_areas` names, on the browser's side of the driver.

    `root` is one of those directories (the browser's view) and `rel` a clean relative path under it
    ("" for the root itself). No operation follows a symbolic link. Missing things raise
    FileNotFoundError, a taken destination FileExistsError, a directory where a file is needed
    IsADirectoryError, a file where a directory is needed NotADirectoryError, a non-empty directory
    OSError(ENOTEMPTY), a path through a link AreaRefused, and a failing host DriverError."""

    def file_areas(self, state: dict[str, Any], runtime_id: uuid.UUID) -> dict[str, str]:
        """The browser's writable directories by name (`downloads`, `workspace`), in the browser's view."""

    async def area_list(self, state: dict[str, Any], root: str, rel: str) -> list[AreaEntry]: ...

    async def area_open(self, state: dict[str, Any], root: str, rel: str) -> Any:
        """A binary file object to read the regular file at `rel` (the caller closes it)."""

    async def area_put(
        self, state: dict[str, Any], root: str, rel: str, source: Path, overwrite: bool, create_parents: bool
    ) -> None:
        """Write the local file `source` at `rel` atomically, readable by the browser."""

    async def area_move(
        self, state: dict[str, Any], src_root: str, src: str, dst_root: str, dst: str, overwrite: bool
    ) -> None: ...

    async def area_delete(self, state: dict[str, Any], root: str, rel: str, recursive: bool) -> None: ...


class Driver(AreaDriver, Protocol):
    name: str
    # Whether browsers keep running when the server process stops (containers do, child processes don't).
    browsers_outlive_server: bool
    # Whether `stop(save_to=)` and `LaunchSpec.restore_from` keep a browser's profile between runs.
    keeps_state: bool
    # Set by the egress service (app/egress/service.py): the proxy browsers are started against, and
    # how to make the proxy answer on an adopted browser's earlier address as well.
    proxy_url: str | None
    serve_proxy: Callable[[str], Awaitable[None]] | None

    async def launch(self, spec: LaunchSpec, timeout: float, on_started: StateCallback | None = None) -> BrowserHandle:
        """Start a browser and return once its CDP endpoint answers; raise DriverError otherwise.

        `on_started` gets the state before the browser is started (a profile dir, a container name), so
        that a server that dies mid-launch leaves enough behind for another process to find and end it."""

    async def stop(self, state: dict[str, Any], save_to: Path | None = None) -> int | None:
        """Stop the browser and remove what it left on disk. Stopping a gone browser is not an error.

        With `save_to` (drivers whose `keeps_state` is true), first archive the browser's state there and
        return its size (None: nothing to keep); raises OSError when it cannot be saved."""

    async def is_alive(self, state: dict[str, Any]) -> bool:
        """Whether the browser described by `state` is still running."""

    async def wait_exit(self, state: dict[str, Any]) -> str:
        """Return when the browser ends, with a short description of how it ended."""

    def browser_id(self, state: dict[str, Any]) -> str | None:
        """What tells this browser from another launch of the same runtime (a container id, a profile dir)."""

    async def list_browsers(self) -> list[ManagedBrowser]:
        """Every browser of this deployment the driver can find, for removing those the database
        no longer knows (drivers whose browsers die with the server return nothing)."""

    async def fetch_file(self, state: dict[str, Any], path: str) -> tuple[Path, bool] | None:
        """Make a file the browser wrote at `path` (its own view) readable here: (local path, whether it is
        a temporary copy the caller deletes), or None when there is no such file."""

    def downloads_dir(self, run_id: uuid.UUID) -> str:
        """Where, in the browser's view, downloads of a run go unless a client says otherwise."""

    def download_areas(self, state: dict[str, Any]) -> list[str]:
        """The directories (browser's view) whose files may become the run's artifacts: its own only."""

    async def close(self) -> None:
        """Release driver resources at server shutdown (browsers are stopped by their owner first)."""

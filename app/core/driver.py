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


class Driver(Protocol):
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

    async def has_owner(self, state: dict[str, Any]) -> bool:
        """Whether a live server process other than this one still looks after this browser."""

    async def wait_exit(self, state: dict[str, Any]) -> str:
        """Return when the browser ends, with a short description of how it ended."""

    def adopted_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """`state` rewritten to name this server process as the browser's owner (after adopting it)."""

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

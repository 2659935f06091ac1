"""Server configuration: every setting is an environment variable with the BCTRL_ prefix."""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Debian's wrapper first (it reads /etc/chromium.d), then the usual names elsewhere.
_CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def detect_chromium() -> str | None:
    for name in _CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BCTRL_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "bctrl"
    driver: Literal["local", "docker"] = "local"
    host: str = "127.0.0.1"
    port: int = 8787
    public_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    # Signs run-scoped CDP URLs; generated and kept in the database when unset.
    secret_key: str | None = Field(default=None, repr=False)
    chromium_path: str | None = None
    # Docker driver (BCTRL_DRIVER=docker): the runtime image, and `host` or the name of the network
    # the server reaches browser containers on (compose sets its own network).
    docker_image: str = "bctrl/chromium:latest"
    docker_network: str = "host"
    # Per-container limits.
    docker_memory: str = "2g"
    docker_cpus: float = Field(default=2.0, gt=0)
    docker_pids_limit: int = Field(default=1024, ge=64)
    docker_shm_size: str = "512m"

    max_runtimes: int = Field(default=8, ge=1)
    launch_timeout_seconds: float = Field(default=20.0, gt=0)
    stop_timeout_seconds: float = Field(default=5.0, gt=0)
    # A browser's saved state (cookies, storage, IndexedDB) kept between runs, uncompressed, at most.
    max_browser_state_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # The contract's floor for a lease TTL; lowered only by tests that watch leases expire.
    min_lease_ttl_seconds: int = Field(default=60, ge=1, le=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    capacity_retry_after_seconds: int = Field(default=5, ge=1)
    # How often the supervisor looks for runtimes stuck in a transition or whose browser vanished.
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    # Files: uploads and files collected from a runtime larger than this get 413.
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    # Run events older than this many days are deleted by the sweeper; 0 keeps them forever.
    event_retention_days: int = Field(default=0, ge=0)
    # An idle SSE stream sends a `heartbeat` frame this often.
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # `serve` splices CDP sockets at the TCP level (app/cdp/splice.py); false relays them over ASGI.
    cdp_splice: bool = True
    # Recordings keep at most this many screencast frames a second.
    recording_fps: float = Field(default=5.0, gt=0, le=30)
    # ffmpeg turns recordings into WebM; auto-detected on PATH. "none": keep the frames as a ZIP instead.
    ffmpeg_path: str | None = None
    # An invocation whose server process sent no heartbeat for this long is failed by another's sweep.
    invocation_dead_after_seconds: float = Field(default=30.0, ge=1)
    # The browser-use engine's virtualenv (`bctrl-server agents install`); default under the data dir.
    browser_use_venv: Path | None = None
    log_level: str = "info"
    log_json: bool = False
    # --- Browser isolation and egress ---
    # Local browsers' profiles, downloads and runtime files, outside the data directory; default
    # /var/lib/bctrl-browsers/<hash of the data dir> (one per deployment, traversable by browser uids).
    browser_root: Path | None = None
    # `auto`: a root server runs each runtime's Chromium as a uid of its own, in a private mount
    # namespace with the managed policy and the data directory hidden; a non-root server refuses to
    # launch. `none`: the explicit opt-out, Chromium runs as the server's own user (trusted clients only).
    browser_isolation: Literal["auto", "none"] = "auto"
    # What browsers may reach besides the web: `private` (intranet and loopback pages, not the control
    # plane) or `public` (globally routable addresses only). Link-local and metadata: never.
    browser_egress: Literal["private", "public"] = "private"
    # The egress proxy every browser goes through: its address and port (0: the last one, else any).
    egress_host: str = "127.0.0.1"
    egress_port: int = Field(default=0, ge=0, le=65535)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bctrl.sqlite3').resolve()}"

    @property
    def objects_dir(self) -> Path:
        """Where the filesystem object store keeps bytes (artifacts, space storage)."""
        return (self.data_dir / "objects").resolve()

    @cached_property
    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def resolved_browser_use_venv(self) -> Path:
        return (self.browser_use_venv or self.data_dir / "agents" / "browser-use").resolve()

    @cached_property
    def resolved_ffmpeg_path(self) -> str | None:
        if self.ffmpeg_path == "none":
            return None
        return self.ffmpeg_path or shutil.which("ffmpeg")

    @cached_property
    def resolved_browser_root(self) -> Path:
        if self.browser_root:
            return self.browser_root.resolve()
        import hashlib
        import os

        if os.geteuid() != 0:
            return (self.data_dir / "browsers").resolve()  # no isolation without root: see browser_isolation

        tag = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
        return Path("/var/lib/bctrl-browsers") / tag

    @cached_property
    def resolved_chromium_path(self) -> str | None:
        return self.chromium_path or detect_chromium()

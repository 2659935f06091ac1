"""Server configuration: every setting is an environment variable with the BCTRL_ prefix."""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Debian's wrapper first (it reads /etc/chromium.d), then the usual names elsewhere.
_CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def detect_chromium() -> str | None:
    for name in _CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class StorageSettingsError(Exception):
    """A bad object storage setting (issue 18). Not a ValueError on purpose: pydantic would wrap that in a
    ValidationError that prints the input, credentials included; this one says only what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BCTRL_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "bctrl"
    driver: Literal["local", "docker", "swarm"] = "local"
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
    # Swarm driver (BCTRL_DRIVER=swarm): the image and the limits above, plus what the scheduler reserves
    # on a node for each browser (what the swarm's free capacity and its placement count).
    swarm_reserve_cpus: float = Field(default=0.25, gt=0)
    swarm_reserve_memory: str = "256m"

    @field_validator("swarm_reserve_memory")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        # Docker's size words (256m, 1g): refused at start rather than at the first launch.
        if (
            not value.strip()
            or value.strip()[-1].lower() not in "bkmg"
            or not value.strip()[:-1].replace(".", "", 1).isdigit()
        ):
            raise ValueError("a size such as 256m or 1g")
        return value.strip()

    max_runtimes: int = Field(default=8, ge=1)
    launch_timeout_seconds: float = Field(default=20.0, gt=0)
    stop_timeout_seconds: float = Field(default=5.0, gt=0)
    # A browser's saved state (cookies, storage, IndexedDB) kept between runs, uncompressed, at most.
    max_browser_state_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # The contract's floor for a lease TTL; lowered only by tests that watch leases expire.
    min_lease_ttl_seconds: int = Field(default=60, ge=1, le=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    capacity_retry_after_seconds: int = Field(default=5, ge=1)
    # A server process's lease on the runs it owns (their observer and recorder), renewed every third of
    # it: another replica takes a run over once its owner's lease has run out (app/runtimes/ownership.py).
    ownership_lease_seconds: float = Field(default=15.0, ge=1.5, le=300)
    # How often the supervisor looks for runtimes stuck in a transition or whose browser vanished.
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    # The longest any browser may stay idle (no client, viewer or task) before it stops itself, whatever
    # its own timeoutSeconds says; unset: each browser's own.
    idle_timeout_max_seconds: int | None = Field(default=None, ge=1)
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
    # A task's agent loop: at most this many steps, and this long (BCTRL_TASK_STEP_LIMIT, _TIMEOUT_SECONDS).
    task_step_limit: int = Field(default=30, ge=1, le=500)
    task_timeout_seconds: int = Field(default=600, ge=1)
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
    # What a saved proxy's test fetches through it: a page answering with the caller's address (JSON `ip`).
    proxy_test_url: str = "https://api.ipify.org?format=json"

    # --- admission (issue 16) ---
    # Starts that may wait for a slot at once (the whole deployment); one more is refused 429 at once.
    admission_queue_max: int = Field(default=100, ge=0)
    # Waiting starts one organization (an account and its subaccounts) may hold; unset: a quarter of the queue.
    admission_queue_max_per_account: int | None = Field(default=None, ge=0)
    # Concurrent browsers of an account whose limits name no maxActiveRuns; unset: no limit.
    max_browsers_per_account: int | None = Field(default=None, ge=1)
    # Concurrent browsers of one space; unset: no limit.
    max_browsers_per_space: int | None = Field(default=None, ge=1)
    # How often a waiting start looks for a slot (each look also proves its process alive).
    admission_poll_seconds: float = Field(default=0.25, gt=0)
    # A queue entry not refreshed for this long is of a dead process: dropped, it holds no place.
    admission_ticket_ttl_seconds: float = Field(default=10.0, gt=0)
    # --- warm pool (issue 16) ---
    # Browsers launched ahead (local driver) for creates of the default configuration; 0: no pool.
    pool_size: int = Field(default=0, ge=0, le=64)
    # At most this many pool browsers started a second while refilling.
    pool_fill_per_second: float = Field(default=1.0, gt=0, le=100)
    # A pool browser unclaimed this long is ended and replaced by a fresh one.
    pool_max_age_seconds: float = Field(default=600.0, gt=0)
    # --- tenants and keys (issue 16) ---
    # --- usage, caps and locations (issue 16) ---
    # What a browser minute costs in USD cents: spending caps (USD cents) count browser minutes x this.
    price_cents_per_browser_minute: float = Field(default=1.0, ge=0)
    # --- webhooks (issue 16) ---
    # Outbox rows older than this are pruned even if a consumer has not read them (7 days).
    outbox_retention_seconds: float = Field(default=7 * 86400.0, gt=0)
    # How often each server process looks for new events to fan out and deliveries that are due.
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Retry backoff: the first wait, doubled each failed attempt up to the cap, with jitter (x0.5-1.0).
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=900.0, gt=0)
    # A delivery gives up (`failed`) after this many attempts or this age, whichever comes first.
    webhook_max_attempts: int = Field(default=200, ge=1)
    webhook_max_age_seconds: float = Field(default=3 * 86400.0, gt=0)
    # One attempt's time limit (connect, send, answer).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # `public`: webhook URLs on loopback or private addresses are refused; `private` allows them (the
    # control plane's own ports, link-local and metadata addresses stay refused either way).
    webhook_egress: Literal["private", "public"] = "public"
    # --- drains (issue 16) ---
    # `public`: drain destinations on loopback or private addresses are refused; `private` allows them
    # (as BCTRL_WEBHOOK_EGRESS: the control plane's own ports, link-local and metadata stay refused).
    drain_egress: Literal["private", "public"] = "public"
    # How often an idle drain pump looks for new events, in seconds.
    drains_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Events per batch a drain sends at most.
    drains_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Backoff after a failed batch: first delay and the ceiling, in seconds (doubling in between).
    drains_retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    drains_retry_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # Seconds one delivery (an HTTP request) may take before it counts as failed.
    drains_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    # --- metrics and health (issue 16) ---
    # GET /metrics needs `Authorization: Bearer <this>` when set; unset, it is open like /readyz.
    metrics_token: str | None = Field(default=None, repr=False)
    # /readyz runs the browser binary (or pings the Docker engine) at most this often; a failure is not cached.
    readiness_cache_seconds: float = Field(default=30.0, ge=0)
    # --- object storage (issue 18) ---
    # Unset: bytes live on the local filesystem under <data_dir>/objects (the embedded default).
    # `s3://<bucket>/<prefix>`: in that bucket of any S3-compatible store, every key under the prefix.
    storage_url: str | None = None
    # The store's base URL (MinIO, R2, Ceph, ...); unset means AWS S3 in `storage_region`.
    storage_endpoint: str | None = None
    storage_region: str = "us-east-1"
    storage_access_key_id: str | None = Field(default=None, repr=False)
    storage_secret_access_key: str | None = Field(default=None, repr=False)
    # Bodies larger than one part go up as a multipart upload, one part in memory at a time (S3's floor: 5 MiB).
    storage_part_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024, le=512 * 1024 * 1024)
    # Seconds one request to the store may wait to connect or between bytes before the store counts as unreachable.
    storage_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _check_storage(self) -> Settings:
        # Object storage (issue 18): a bad s3 setting stops the server at start, not the first upload.
        if not self.storage_url:
            return self
        if not self.storage_url.startswith("s3://") or not self.storage_url[5:].split("/", 1)[0]:
            raise StorageSettingsError("BCTRL_STORAGE_URL must look like s3://<bucket>/<prefix>")
        if not self.storage_access_key_id or not self.storage_secret_access_key:
            raise StorageSettingsError(
                "BCTRL_STORAGE_URL needs BCTRL_STORAGE_ACCESS_KEY_ID and BCTRL_STORAGE_SECRET_ACCESS_KEY"
            )
        if self.storage_endpoint and not self.storage_endpoint.startswith(("http://", "https://")):
            raise StorageSettingsError("BCTRL_STORAGE_ENDPOINT must be an http:// or https:// URL")
        return self

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

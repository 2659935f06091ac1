"""Liveness and readiness probes (no authentication: load balancers call them)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from app.accounts.auth import CtxDep
from app.core.config import Settings
from app.core.context import AppContext
from app.core.errors import RETRY_AFTER_SECONDS, DomainError
from app.core.responses import JSONResponse
from app.core.schemas import WireModel

PROBE_TIMEOUT_SECONDS = 3.0
# Starting a binary (Chromium, ffmpeg) on a loaded host can take seconds without anything being wrong.
BINARY_PROBE_TIMEOUT_SECONDS = 10.0
_SLOW_PROBES = {"driver", "ffmpeg"}

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


class Readiness(WireModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description="Each dependency: `ok`, or `unreachable: <reason>`")
    unavailable: list[str] | None = Field(default=None, description="What does not answer (only when unavailable)")


_NOT_READY = {
    200: {"model": Readiness, "description": "Everything the server needs answers"},
    503: {
        "description": "Something the server needs does not answer; `checks` names it",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "checks"],
                    "properties": {
                        "status": {"const": "unavailable"},
                        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                        "unavailable": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        },
    },
}


@router.get("/readyz", responses=_NOT_READY)
async def readyz(ctx: CtxDep) -> JSONResponse:
    """The database, the lock backend (Redis, when configured), the browser host (the Chromium binary
    runs; the Docker engine answers), the data directory takes writes, ffmpeg runs when recordings
    are encoded with it, and the S3-compatible object store answers when one is configured; 503 (with
    Retry-After) names what does not."""
    probes = {"database": ctx.db.ping, **host_probes(ctx), **ctx.readiness_probes}
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            # Bounded: a backend that hangs is as unready as one that refuses.
            bound = BINARY_PROBE_TIMEOUT_SECONDS if name in _SLOW_PROBES else PROBE_TIMEOUT_SECONDS
            await asyncio.wait_for(probe(), bound)
            checks[name] = "ok"
        except NotReady as exc:
            checks[name] = f"unreachable: {exc}"
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"
    down = [name for name, state in checks.items() if state != "ok"]
    if not down:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse(
        {"status": "unavailable", "checks": checks, "unavailable": down},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# --- the host's own checks --------------------------------------------------------------------------


class NotReady(Exception):
    """A check failed for a reason worth showing (no secrets, no paths beyond the configured ones)."""


Probe = Callable[[], Awaitable[object]]
# (what was checked) -> monotonic time until which its success stands; failures are not kept.
_passed: dict[tuple, float] = {}


def host_probes(ctx: AppContext) -> dict[str, Probe]:
    settings = ctx.settings
    probes: dict[str, Probe] = {"driver": lambda: _driver(ctx), "data_dir": lambda: _writable(settings.data_dir)}
    ffmpeg = settings.resolved_ffmpeg_path
    if ffmpeg:
        # Recordings are encoded with it; without one configured or found they are kept as frames (ZIP).
        probes["ffmpeg"] = lambda: _cached(("ffmpeg", ffmpeg), settings, lambda: _runs(ffmpeg, "-version"))
    if settings.storage_url:
        probes["storage"] = lambda: _object_store(settings)
    return probes


async def _object_store(settings: Settings) -> None:
    """The S3-compatible bucket answers a one-key listing under the prefix with the configured credentials."""
    from app.storage import make_store

    try:
        await make_store(settings).ready()
    except DomainError:
        raise NotReady("the object store does not answer (BCTRL_STORAGE_URL)") from None


async def _driver(ctx: AppContext) -> None:
    driver = ctx.driver
    if driver.name in ("docker", "swarm"):
        await _cached((driver.name,), ctx.settings, lambda: _docker_ping(swarm=driver.name == "swarm"))
        return
    path = getattr(driver, "chromium_path", None)
    if not path:
        raise NotReady("no Chromium found: install it or set BCTRL_CHROMIUM_PATH")
    await _cached(("chromium", path), ctx.settings, lambda: _runs(path, "--version"))


async def _cached(key: tuple, settings: Settings, check: Callable[[], Awaitable[None]]) -> None:
    """Run `check` unless it passed within BCTRL_READINESS_CACHE_SECONDS (starting a binary every few
    seconds for each probe of each load balancer is wasteful; a failure is checked again every time)."""
    if _passed.get(key, 0.0) > time.monotonic():
        return
    await check()
    _passed[key] = time.monotonic() + settings.readiness_cache_seconds


async def _runs(binary: str, flag: str) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            flag,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        raise NotReady(f"{binary} does not run ({type(exc).__name__})") from None
    try:
        code = await proc.wait()
    except BaseException:
        # Timed out (readyz's bound) or cancelled: the probe's child must not outlive it.
        proc.kill()
        await asyncio.shield(proc.wait())
        raise
    if code != 0:
        raise NotReady(f"{binary} {flag} exited with {code}")


async def _docker_ping(swarm: bool = False) -> None:
    """The engine answers; for the swarm driver, as a manager of an active swarm (it creates services)."""

    def ping() -> None:
        import docker  # only the docker driver needs the package

        try:
            client = docker.from_env(timeout=int(PROBE_TIMEOUT_SECONDS))
            try:
                client.ping()
                managing = not swarm or bool((client.info().get("Swarm") or {}).get("ControlAvailable"))
            finally:
                client.close()
        except Exception as exc:  # the client raises its own errors and requests' alike
            raise NotReady(f"the Docker engine does not answer ({type(exc).__name__})") from None
        if not managing:
            raise NotReady("the Docker engine is not a manager of an active swarm (docker swarm init, or join)")

    await asyncio.to_thread(ping)


async def _writable(directory: Path) -> None:
    def touch() -> None:
        probe = directory / f".readyz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise NotReady(f"the data directory does not take writes ({exc.strerror or type(exc).__name__})") from None

    await asyncio.to_thread(touch)

"""A browser's saved state as an archive: what of a Chromium profile is kept from one run to the next.

Kept: cookies, local and session storage, IndexedDB, service-worker registrations, preferences (the
`Default` profile and `Local State`). Not kept: caches, crash reports, locks and sockets. The profile
was written by the browser, which is hostile code: only regular files and directories are archived
(no links, devices or fifos), and restoring extracts with tarfile's `data` filter (no absolute paths,
nothing outside the profile, no special bits), then gives the files to the browser's uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tarfile
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

# Top-level entries of the profile that hold state; everything else is rebuilt by Chromium.
KEPT_ROOT = ("Default", "Local State")
# Inside Default: rebuilt on demand, and most of the bytes.
SKIPPED = frozenset(
    {
        "Cache",
        "Code Cache",
        "GPUCache",
        "DawnCache",
        "DawnGraphiteCache",
        "DawnWebGPUCache",
        "GrShaderCache",
        "ShaderCache",
        "Crashpad",
        "blob_storage",
        "optimization_guide_hint_cache_store",
        "Download Service",
        "LOCK",
        "SingletonLock",
        "SingletonSocket",
        "SingletonCookie",
    }
)


class CorruptState(Exception):
    """The archive cannot be read back: the browser starts clean and says so."""


def archive(profile_dir: Path, target: Path, max_bytes: int) -> int | None:
    """Write the profile's state to `target` (gzip tar); its size, or None when there is nothing to keep.
    Raises OSError when the state is larger than `max_bytes` uncompressed."""
    total = 0
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        for root_name in KEPT_ROOT:
            top = profile_dir / root_name
            if not top.exists() or top.is_symlink():
                continue
            for path in [top, *_walk(top)]:
                info = path.lstat()
                if not (path.is_dir() or path.is_file()) or path.is_symlink():
                    continue
                if path.is_file():
                    total += info.st_size
                    if total > max_bytes:
                        raise OSError(f"the browser's state is larger than {max_bytes} bytes")
                tar.add(path, arcname=str(path.relative_to(profile_dir)), recursive=False)
    if total == 0:
        target.unlink(missing_ok=True)
        return None
    return target.stat().st_size


def _walk(top: Path):
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED]
        base = Path(dirpath)
        for name in dirnames:
            yield base / name
        for name in filenames:
            if name not in SKIPPED:
                yield base / name


def restore(source: Path, profile_dir: Path, uid: int | None) -> None:
    """Unpack a saved state into a new, empty profile directory; CorruptState when it cannot be read."""
    try:
        with tarfile.open(source, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            for member in members:
                if member.name.split("/", 1)[0] not in KEPT_ROOT:
                    raise CorruptState(f"unexpected entry {member.name!r}")
            tar.extractall(profile_dir, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise CorruptState(str(exc)) from exc
    if uid is not None:
        for dirpath, dirnames, filenames in os.walk(profile_dir):
            for name in (*dirnames, *filenames):
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


async def close_gracefully(ws_url: str, timeout: float = 3.0) -> None:
    """Ask the browser to close itself (CDP `Browser.close`); a browser that does not answer is left to
    the signals that follow."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            async with connect(ws_url, max_size=None, open_timeout=timeout) as ws:
                await ws.send(orjson.dumps({"id": 1, "method": "Browser.close"}).decode())
                with contextlib.suppress(Exception):
                    await ws.recv()

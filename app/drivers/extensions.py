"""Loading a browser's extensions (`LaunchSpec.extensions`: unpacked directories on the server's host,
under the data directory, which browsers never see) into the browser the drivers start.

- Local driver: each directory is copied into the launch's own profile directory
  (`<profile>/bctrl-extensions/<n>/`, owned by the browser's uid, 0700 above it), which no other
  browser can read, is not part of the saved state (app/drivers/profile.py keeps `Default` and
  `Local State` only) and is removed with the profile when the browser stops.
- Docker driver: the container gets an anonymous volume at /extensions (its root filesystem is read-
  only, and the archive API does not reach tmpfs mounts), filled through the archive API before the
  container starts; files are root's and read-only to the browser's user; the volume goes with the
  container (removed with `v=True`).
Both then start Chromium with `--load-extension` (Chromium 156 of Debian honours it in new headless)
and `--disable-extensions-except` naming the same directories.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

from app.core.driver import DriverError

LOCAL_DIR = "bctrl-extensions"
CONTAINER_DIR = "/extensions"


def flags(dirs: list[str]) -> list[str]:
    if not dirs:
        return []
    joined = ",".join(dirs)
    return [f"--load-extension={joined}", f"--disable-extensions-except={joined}"]


# --- local driver -------------------------------------------------------------------------------------


def stage_local(sources: tuple[str, ...], profile_dir: Path, uid: int | None) -> list[str]:
    """Copy the extensions into the browser's profile directory; the flags that load them."""
    if not sources:
        return []
    base = profile_dir / LOCAL_DIR
    dirs = []
    try:
        base.mkdir(mode=0o700)
        for n, source in enumerate(sources):
            target = base / str(n)
            shutil.copytree(source, target, symlinks=False)
            dirs.append(str(target))
        for path in [base, *base.rglob("*")]:
            if uid is not None:
                os.chown(path, uid, uid, follow_symlinks=False)
            path.chmod(0o700 if path.is_dir() else 0o400)
    except OSError as exc:
        raise DriverError(
            f"The browser's extensions could not be prepared: {exc}", code="runtime.launch_failed"
        ) from exc
    return flags(dirs)


# --- docker driver ------------------------------------------------------------------------------------


def container_dirs(sources: tuple[str, ...]) -> list[str]:
    return [f"{CONTAINER_DIR}/{n}" for n in range(len(sources))]


def tar_of(sources: tuple[str, ...]) -> bytes:
    """A tar of the extensions as `<n>/...` (extracted at /extensions): root's files, readable by all."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for n, source in enumerate(sources):
            root = Path(source)
            for path in [root, *sorted(root.rglob("*"))]:
                mode = path.lstat().st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    continue
                rel = path.relative_to(root).as_posix()
                info = tar.gettarinfo(str(path), arcname=str(n) if rel == "." else f"{n}/{rel}")
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755 if info.isdir() else 0o644
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buffer.getvalue()

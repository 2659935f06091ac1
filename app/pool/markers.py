"""The note beside a pool browser's profile (`<profile>.pool`, root's alone in the 0711 profiles
directory): which server keeps it while it waits, and which runtime claimed it.

A pool browser's profile is named after a pool id, not a runtime, so the sweep of any server on this
host (app/runtimes/supervisor.py) would take a waiting one for an orphan and a claimed one for a
stranger: the pooled driver reads this note to hide the first and name the runtime of the second.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

SUFFIX = ".pool"


def path_of(profile_dir: str) -> Path:
    return Path(f"{profile_dir}{SUFFIX}")


def write(profile_dir: str, note: dict[str, Any]) -> None:
    """Atomically: a sweep reading it meanwhile sees the old note or the new one."""
    target = path_of(profile_dir)
    temp = target.with_name(f".{target.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(note, f)
    os.replace(temp, target)


def read(profile_dir: str) -> dict[str, Any] | None:
    try:
        return json.loads(path_of(profile_dir).read_text())
    except (OSError, ValueError):
        return None


def remove(profile_dir: str) -> None:
    with contextlib.suppress(OSError):
        path_of(profile_dir).unlink()

"""The data directory holds every account's files and the database (with the server's keys when
BCTRL_SECRET_KEY is unset): only the server's own user may read it."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path


def secure(data_dir: Path, sqlite_path: Path | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if sqlite_path is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{sqlite_path}{suffix}").chmod(0o600)


def recording_frames(data_dir: Path, run_id: uuid.UUID) -> Path:
    """Where a run's recording frames are kept (app/live/recorder.py writes them)."""
    return data_dir.resolve() / "recordings" / str(run_id)

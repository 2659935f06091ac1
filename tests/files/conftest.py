"""Helpers for the file tests: what is in the object store, and runtimes that are stopped afterwards."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.support import started_runtime  # noqa: F401  (re-exported for the files tests)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_objects(server) -> set[str]:
    """Every file under the objects directory, temporary ones included, but run recordings: those of
    earlier tests' runs are finished in the background and may land during any test."""
    root = server.settings.objects_dir
    if not root.exists():
        return set()
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return {key for key in found if not key.startswith("recordings/")}


def runtime_area(server, runtime_id: str) -> Path:
    return (server.settings.resolved_browser_root / "files" / runtime_id).resolve()


@pytest.fixture
def objects(server):
    """A snapshot of the object store taken before the test; call it to get what was added since."""
    before = stored_objects(server)

    def added() -> set[str]:
        # A recording finished in the background passes through `.tmp/` on its way in; a temporary
        # file that is still there after a few seconds is a leak.
        deadline = time.monotonic() + 10
        while True:
            now = stored_objects(server) - before
            if not any(key.startswith(".tmp/") for key in now) or time.monotonic() > deadline:
                return now
            time.sleep(0.2)

    return added

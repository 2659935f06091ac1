"""Handing a runtime's file area from one browser uid to another.

A cold launch runs the runtime's browser as the uid derived from the runtime id, so the files its
earlier runs left in `<browser root>/files/<runtime>/` are already its own. A pooled browser was
started as a uid of its own before its runtime was known: at the claim the area is handed to that
uid, and when it stops, back to the runtime's, so a later cold run reads what this one wrote.

Only directories and regular files owned by a browser uid change hands (never root's staged files,
never anything else), walked by directory descriptors without following a link, each changed through a
descriptor of the inode checked; a file with several names is left alone: a browser must not be able to
turn this into a chown of something outside its area.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.drivers.local import UID_BASE, UID_SPAN


def _browser_owned(st: os.stat_result) -> bool:
    return UID_BASE <= st.st_uid < UID_BASE + UID_SPAN


def hand_over(area: Path, uid: int) -> None:
    """Give `area` and what browsers wrote in it to `uid` (the area is made if missing, 0700)."""
    area.mkdir(parents=True, exist_ok=True)
    top = os.open(area, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(top, uid, uid)
        os.fchmod(top, 0o700)
    finally:
        os.close(top)
    for _root, dirs, files, dir_fd in os.fwalk(area, follow_symlinks=False):
        for name in [*dirs, *files]:
            _hand_over_entry(name, dir_fd, uid)


# Opens an entry without following a link, without waiting on a FIFO, without making it a terminal.
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _may_change(st: os.stat_result) -> bool:
    """A directory or a single-named regular file owned by a browser uid (never a link, FIFO, socket)."""
    if not _browser_owned(st):
        return False
    return stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1)


def _hand_over_entry(name: str, dir_fd: int, uid: int) -> None:
    """Change one entry's owner through a descriptor of the inode that was checked. A browser still
    running can swap the name between a check and a change by name (e.g. for a hard link to a host file):
    the descriptor is the inode, so the checks on its fstat hold for what fchown changes."""
    try:
        if not _may_change(os.stat(name, dir_fd=dir_fd, follow_symlinks=False)):
            return  # no open at all of what is not ours to change
        fd = os.open(name, _OPEN, dir_fd=dir_fd)
    except OSError:  # gone, or swapped for a link (ELOOP) or a socket (ENXIO) meanwhile
        return
    try:
        if _may_change(os.fstat(fd)):
            os.fchown(fd, uid, uid)
    finally:
        os.close(fd)

"""A browser's writable file area on each kind of host, for the browser files API (app/browsing/files.py).

Host (the local driver): the area directories are on this machine and the browser (as its own uid when
isolated) may have planted symbolic links in them. Every operation walks from the area's root with
directory file descriptors and O_NOFOLLOW, so a link is never followed: a path through one is refused
(AreaRefused), a link itself is listed as a link, deleted as a link, never read or written through.
What is written is handed to the browser's uid, so the browser can read it.

Container (the Docker driver): the areas are the container's own tmpfs mounts, which the Engine's
archive API cannot see. Each operation runs one small shell script through `exec` as the browser's
user; the script resolves the path inside the container and refuses one that leaves the area. File
bytes go in through the exec's stdin and come out through its stdout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from app.core.driver import AreaEntry, AreaRefused, DriverError

CHUNK = 1024 * 1024
_TMP_PREFIX = ".bctrl-put-"


# --- host --------------------------------------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def _open_dir(root: str, parts: list[str], uid: int | None = None, create: bool = False) -> int:
    """A descriptor of the directory `root/parts...`, reached without following a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o700, dir_fd=fd)
                if uid is not None:
                    os.chown(part, uid, uid, dir_fd=fd, follow_symlinks=False)
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise AreaRefused(part) from None
                if exc.errno == errno.ENOTDIR:
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise AreaRefused(part) from None
                    raise NotADirectoryError(part) from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _split(rel: str) -> tuple[list[str], str]:
    parts = [p for p in rel.split("/") if p]
    return parts[:-1], parts[-1]


def host_list(root: str, rel: str) -> list[AreaEntry]:
    fd = _open_dir(root, [p for p in rel.split("/") if p])
    try:
        found = []
        for name in os.listdir(fd):
            if name.startswith(_TMP_PREFIX):
                continue
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            kind = _kind(info.st_mode)
            found.append(AreaEntry(name, kind, info.st_size if kind == "file" else None, info.st_mtime))
        return found
    finally:
        os.close(fd)


def host_open(root: str, rel: str):
    parents, name = _split(rel)
    fd = _open_dir(root, parents)
    try:
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AreaRefused(name) from None
            raise
    finally:
        os.close(fd)
    mode = os.fstat(src).st_mode
    if not stat.S_ISREG(mode):
        os.close(src)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(rel)
        raise FileNotFoundError(rel)
    os.set_blocking(src, True)
    return os.fdopen(src, "rb")


def host_put(root: str, rel: str, source: Path, overwrite: bool, create_parents: bool, uid: int | None) -> None:
    parents, name = _split(rel)
    fd = _open_dir(root, parents, uid, create=create_parents)
    try:
        with contextlib.suppress(FileNotFoundError):
            existing = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            if stat.S_ISDIR(existing):
                raise IsADirectoryError(rel)
            if not overwrite:
                raise FileExistsError(rel)
        tmp = f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as f, open(source, "rb") as src:
                shutil.copyfileobj(src, f, CHUNK)
                if uid is not None:
                    os.fchown(f.fileno(), uid, uid)
            if overwrite:
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)  # replaces a link itself, never its target
            else:
                os.link(tmp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)  # EEXIST if taken meanwhile
                os.unlink(tmp, dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise
    finally:
        os.close(fd)


def host_move(src_root: str, src: str, dst_root: str, dst: str, overwrite: bool) -> None:
    src_parents, src_name = _split(src)
    dst_parents, dst_name = _split(dst)
    sfd = _open_dir(src_root, src_parents)
    try:
        dfd = _open_dir(dst_root, dst_parents)
        try:
            moving = os.stat(src_name, dir_fd=sfd, follow_symlinks=False).st_mode
            with contextlib.suppress(FileNotFoundError):
                existing = os.stat(dst_name, dir_fd=dfd, follow_symlinks=False).st_mode
                if not overwrite:
                    raise FileExistsError(dst)
                if stat.S_ISDIR(existing) and not stat.S_ISDIR(moving):
                    raise IsADirectoryError(dst)
            os.rename(src_name, dst_name, src_dir_fd=sfd, dst_dir_fd=dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def host_delete(root: str, rel: str, recursive: bool) -> None:
    parents, name = _split(rel)
    fd = _open_dir(root, parents)
    try:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            os.unlink(name, dir_fd=fd)
        elif recursive:
            shutil.rmtree(name, dir_fd=fd)  # descriptor-based: never follows a link out
        else:
            os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


# --- container ---------------------------------------------------------------------------------------

# Exit codes of the scripts below, turned into the exceptions the protocol names.
_CODES = {
    3: FileNotFoundError,
    4: AreaRefused,
    5: FileExistsError,
    6: NotADirectoryError,
    7: IsADirectoryError,
}
# The most a copy out of a container reads (one byte beyond the largest download the API serves).
COPY_LIMIT = 1024 * 1024 * 1024 + 1
# $1 the area root, $2 the relative path. Sets $p, the path, after checking that nothing on the way to
# it (the path itself included) is a symbolic link.
_WALK = r"""
root=$1; rel=$2; p=$root
[ -d "$root" ] || mkdir -p -- "$root" || exit 1
if [ -n "$rel" ]; then
  IFS=/; set -f
  for part in $rel; do { [ "$p" != "$root" ] && [ -L "$p" ]; } && exit 4; p="$p/$part"; done
  unset IFS; set +f
fi
"""
_SCRIPTS = {
    "list": _WALK
    + r"""
[ -L "$p" ] && exit 4
[ -e "$p" ] || exit 3
[ -d "$p" ] || exit 6
find "$p" -mindepth 1 -maxdepth 1 ! -name '.bctrl-put-*' -printf '%y\t%s\t%T@\t%f\0'
""",
    "stat": _WALK
    + r"""
[ -L "$p" ] && exit 4
[ -e "$p" ] || exit 3
[ -d "$p" ] && exit 7
[ -f "$p" ] || exit 3
exec head -c "$3" -- "$p"
""",
    # $3 overwrite (1/0), $4 create parents (1/0); the bytes on stdin.
    "put": _WALK
    + r"""
dir=${p%/*}
if [ ! -d "$dir" ]; then [ "$4" = 1 ] || exit 3; mkdir -p -- "$dir" || exit 3; fi
[ -d "$p" ] && [ ! -L "$p" ] && exit 7
{ [ -e "$p" ] || [ -L "$p" ]; } && [ "$3" != 1 ] && exit 5
tmp="$dir/.bctrl-put-$$"
cat > "$tmp" || { rm -f -- "$tmp"; exit 1; }
if [ "$3" = 1 ]; then mv -fT -- "$tmp" "$p"; else mv -nT -- "$tmp" "$p"; [ -e "$tmp" ] && { rm -f -- "$tmp"; exit 5; }; fi
exit 0
""",
    "delete": _WALK
    + r"""
[ -e "$p" ] || [ -L "$p" ] || exit 3
if [ -d "$p" ] && [ ! -L "$p" ]; then
  if [ "$3" = 1 ]; then rm -rf -- "$p"; else rmdir -- "$p" 2>/dev/null || exit 8; fi
else rm -f -- "$p"; fi
""",
}
# $1 $2 source root and path, $3 $4 destination root and path, $5 overwrite.
_MOVE = r"""
over=$5
walk() { r=$1; p=$1; IFS=/; set -f; for part in $2; do { [ "$p" != "$r" ] && [ -L "$p" ]; } && exit 4; p="$p/$part"; done; unset IFS; set +f; }
walk "$1" "$2"; from=$p
[ -e "$from" ] || [ -L "$from" ] || exit 3
walk "$3" "$4"; to=$p
[ -d "${to%/*}" ] || exit 3
if [ -e "$to" ] || [ -L "$to" ]; then
  [ "$over" = 1 ] || exit 5
  [ -d "$to" ] && [ ! -L "$to" ] && [ ! -d "$from" ] && exit 7
fi
mv -fT -- "$from" "$to"
"""


def _raise_for(code: int, what: str) -> None:
    if code == 0:
        return
    if code == 8:
        raise OSError(errno.ENOTEMPTY, "directory not empty", what)
    if code in _CODES:
        raise _CODES[code](what)
    raise DriverError(
        f"The browser container could not work on {what} (exit {code})", code="browser.file_transfer_failed"
    )


def docker_list(client, container_id: str, root: str, rel: str) -> list[AreaEntry]:
    api = client.api
    exec_id = api.exec_create(container_id, ["sh", "-c", _SCRIPTS["list"], "sh", root, rel], user="chrome")["Id"]
    out = api.exec_start(exec_id, demux=True)[0] or b""
    _raise_for(api.exec_inspect(exec_id)["ExitCode"], rel or root)
    kinds = {"f": "file", "d": "directory", "l": "symlink"}
    found = []
    for record in out.split(b"\0"):
        if not record:
            continue
        kind, size, mtime, name = record.decode("utf-8", "replace").split("\t", 3)
        k = kinds.get(kind, "other")
        found.append(AreaEntry(name, k, int(size) if k == "file" else None, float(mtime)))
    return found


def docker_open(client, container_id: str, root: str, rel: str, scratch: Path):
    """A temporary copy of the file, already unlinked: it lives as long as the returned file object."""
    api = client.api
    # At most COPY_LIMIT bytes: the browser may swap the file for a link to an endless one (/dev/zero)
    # between the script's checks and the read; the caller refuses a copy beyond its own limit.
    cmd = ["sh", "-c", _SCRIPTS["stat"], "sh", root, rel, str(COPY_LIMIT)]
    exec_id = api.exec_create(container_id, cmd, user="chrome", stderr=False)["Id"]
    fd, temp = tempfile.mkstemp(prefix="bctrl-area-", dir=scratch)
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            for chunk in api.exec_start(exec_id, stream=True):
                out.write(chunk)
        _raise_for(api.exec_inspect(exec_id)["ExitCode"], rel)
        os.lseek(fd, 0, os.SEEK_SET)
        f = os.fdopen(fd, "rb")
        fd = -1
        return f
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(temp)


def docker_put(client, container_id: str, root: str, rel: str, source: Path, overwrite: bool, parents: bool) -> None:
    api = client.api
    cmd = ["sh", "-c", _SCRIPTS["put"], "sh", root, rel, "1" if overwrite else "0", "1" if parents else "0"]
    exec_id = api.exec_create(container_id, cmd, user="chrome", stdin=True, stdout=True, stderr=True)["Id"]
    conn = api.exec_start(exec_id, socket=True)
    raw = getattr(conn, "_sock", conn)
    try:
        with open(source, "rb") as src:
            while data := src.read(CHUNK):
                raw.sendall(data)
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
        while raw.recv(65536):  # the exec's (multiplexed) output, until it ends
            pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    code: Any = None
    for _ in range(50):
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            code = info["ExitCode"]
            break
        time.sleep(0.05)
    _raise_for(code if code is not None else 1, rel)


def docker_move(client, container_id: str, src_root: str, src: str, dst_root: str, dst: str, overwrite: bool) -> None:
    api = client.api
    cmd = ["sh", "-c", _MOVE, "sh", src_root, src, dst_root, dst, "1" if overwrite else "0"]
    exec_id = api.exec_create(container_id, cmd, user="chrome")["Id"]
    api.exec_start(exec_id)
    _raise_for(api.exec_inspect(exec_id)["ExitCode"], src)


def docker_delete(client, container_id: str, root: str, rel: str, recursive: bool) -> None:
    api = client.api
    cmd = ["sh", "-c", _SCRIPTS["delete"], "sh", root, rel, "1" if recursive else "0"]
    exec_id = api.exec_create(container_id, cmd, user="chrome")["Id"]
    api.exec_start(exec_id)
    _raise_for(api.exec_inspect(exec_id)["ExitCode"], rel)

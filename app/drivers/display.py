"""A virtual display (Xvfb) for a headful browser: one per browser, started before it, stopped with it.

Xvfb picks a free display number itself (`-displayfd`), so concurrent launches never race for one.
Only its browser may connect: the display takes an MIT-MAGIC-COOKIE of its own (a random cookie written
to the browser's profile directory, which only the browser's uid reads), and listens on no TCP port.
An isolated browser (app/drivers/local.py) has a private /tmp, so it reaches the display through the
abstract socket Xvfb also opens; its Xvfb runs as the browser's own uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import struct
from dataclasses import dataclass
from pathlib import Path

# Under the profile directory: the browser's stop finds a display left behind by this path in its command line.
DISPLAY_DIR = ".bctrl-display"
COOKIE_NAME = b"MIT-MAGIC-COOKIE-1"
FAMILY_WILD = 0xFFFF


class DisplayError(Exception):
    pass


@dataclass(frozen=True)
class Display:
    number: int
    pid: int
    xauthority: str

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": f":{self.number}", "XAUTHORITY": self.xauthority}


def xvfb_path() -> str | None:
    return shutil.which("Xvfb")


def screen_size(window: tuple[int, int]) -> tuple[int, int]:
    """A screen comfortably larger than the browser's window (Chromium keeps windows on screen)."""
    return max(1920, window[0] + 200), max(1080, window[1] + 300)


def _auth_entry(cookie: bytes) -> bytes:
    """One Xauthority entry for any display of this host (the format both Xvfb's -auth and Xlib read)."""

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    return struct.pack(">H", FAMILY_WILD) + field(b"") + field(b"") + field(COOKIE_NAME) + field(cookie)


def _write_private(path: Path, data: bytes, uid: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if uid is not None:
        os.chown(path, uid, uid)


def _await_number(read_fd: int, proc_returncode, timeout: float) -> int | None:
    """What Xvfb writes to its -displayfd once it accepts connections; None if it ends or stays silent."""
    data = b""
    deadline_polls = int(timeout / 0.1)
    for _ in range(deadline_polls):
        ready, _, _ = select.select([read_fd], [], [], 0.1)
        if ready:
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\n"):
                return int(data.strip())
        if proc_returncode() is not None:
            break
    return int(data.strip()) if data.strip().isdigit() else None


def _prepare(profile_dir: Path, uid: int | None) -> tuple[Path, Path]:
    """The display's auth files (server's and client's: one random cookie) and the host's socket directory."""
    home = profile_dir / DISPLAY_DIR
    home.mkdir(mode=0o700, exist_ok=True)
    if uid is not None:
        os.chown(home, uid, uid)
    entry = _auth_entry(os.urandom(16))
    server_auth, client_auth = home / "server.auth", home / "Xauthority"
    _write_private(server_auth, entry, uid)
    _write_private(client_auth, entry, uid)
    # Xvfb (even as another uid) puts its socket and lock file in the host's /tmp.
    sockets = Path("/tmp/.X11-unix")
    if not sockets.exists():
        sockets.mkdir(mode=0o1777, exist_ok=True)
        sockets.chmod(0o1777)
    return server_auth, client_auth


async def start(
    profile_dir: Path, window: tuple[int, int], uid: int | None, log_file, timeout: float = 10.0
) -> tuple[Display, asyncio.subprocess.Process]:
    binary = xvfb_path()
    if binary is None:
        raise DisplayError(
            "A headful browser needs Xvfb, which is not installed on this host: run `apt-get install xvfb` "
            "(scripts/ensure-chromium.sh does)"
        )
    server_auth, client_auth = await asyncio.to_thread(_prepare, profile_dir, uid)
    width, height = screen_size(window)
    read_fd, write_fd = os.pipe()
    command = [
        binary,
        "-displayfd",
        str(write_fd),
        "-screen",
        "0",
        f"{width}x{height}x24",
        "-nolisten",
        "tcp",
        "-auth",
        str(server_auth),
        "-noreset",
    ]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--", *command]
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            pass_fds=(write_fd,),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise DisplayError(f"Xvfb could not be started: {exc}") from exc
    finally:
        os.close(write_fd)
    try:
        number = await asyncio.to_thread(_await_number, read_fd, lambda: proc.returncode, timeout)
    finally:
        os.close(read_fd)
    if number is None:
        stop_pid(proc.pid)
        raise DisplayError(f"Xvfb did not start a display within {timeout:g}s (exit code {proc.returncode})")
    return Display(number=number, pid=proc.pid, xauthority=str(client_auth)), proc


def stop_pid(pid: int | None) -> None:
    """Stop the display (its own process group); a gone display is not an error."""
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)

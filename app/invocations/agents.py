"""The browser-use engine's own virtualenv: created by `bctrl-server agents install`, used by the worker
to run `browser_use_runner.py` as one subprocess per invocation. The server never imports browser-use
(its pins clash with ours, and it pulls in about 360 MB).

The engine is optional: `make run` does not install it (`BCTRL_INSTALL_BROWSER_USE=1 make install` or
`bctrl-server agents install` does). A browserUse invocation or a browser-use task on a server without it
fails at once with a message naming the command (browser_use_provider.py), rather than downloading
360 MB while the request waits: installing software is the operator's decision, not a caller's."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BROWSER_USE = "browser-use==0.13.14"
# What a fresh install measured: the virtualenv on disk.
SIZE = "360 MB"
RUNNER = Path(__file__).with_name("browser_use_runner.py")
MISSING = (
    f"browser-use is not installed on this server (an optional engine, about {SIZE}): "
    "run `bctrl-server agents install` on the server, then retry"
)


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed(venv: Path) -> bool:
    marker = venv / ".bctrl-installed"
    return python_of(venv).exists() and marker.exists() and marker.read_text().strip() == BROWSER_USE


def install(venv: Path, echo=print) -> bool:
    """Create the virtualenv with browser-use in it, showing pip's progress; False when it was there already
    (idempotent). An interrupted install leaves no marker, so the next one starts again."""
    if installed(venv):
        return False
    began = time.monotonic()
    echo(
        f"Installing the optional browser-use engine ({BROWSER_USE}) into {venv}:\n"
        f"  about {SIZE} on disk, about a minute on a fast connection. pip's progress follows.\n"
        "  Ctrl+C skips it: the server runs without it, and browserUse work says how to install it later."
    )
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python_of(venv)),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
            BROWSER_USE,
        ],
        check=True,
    )
    (venv / ".bctrl-installed").write_text(BROWSER_USE + "\n")
    echo(f"browser-use installed in {time.monotonic() - began:.0f} s")
    return True

"""The browser-use engine's own virtualenv: created by `bctrl-server agents install`, used by the worker
to run `browser_use_runner.py` as one subprocess per invocation. The server never imports browser-use
(its pins clash with ours, and it pulls in about 340 MB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BROWSER_USE = "browser-use==0.13.14"
RUNNER = Path(__file__).with_name("browser_use_runner.py")


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed(venv: Path) -> bool:
    marker = venv / ".bctrl-installed"
    return python_of(venv).exists() and marker.exists() and marker.read_text().strip() == BROWSER_USE


def install(venv: Path, echo=print) -> bool:
    """Create the virtualenv with browser-use in it; False when it was there already (idempotent)."""
    if installed(venv):
        return False
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    echo(f"installing {BROWSER_USE} into {venv} (about 340 MB)...")
    subprocess.run(
        [str(python_of(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check", BROWSER_USE], check=True
    )
    (venv / ".bctrl-installed").write_text(BROWSER_USE + "\n")
    return True

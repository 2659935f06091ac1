"""Puppeteer (puppeteer-core from npm, no browser download) through the proxy, driven from pytest."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import lease

JS = Path(__file__).parent / "js"


def test_puppeteer_connects_with_browser_ws_endpoint(live, runtime, pages):
    assert shutil.which("node"), "node is needed for the Puppeteer test (apt-get install nodejs)"
    assert (JS / "node_modules" / "puppeteer-core").is_dir(), "run `npm ci` in tests/e2e/js (make test does)"
    with live.client() as client:
        endpoint = lease(client, runtime).json()["endpoint"]["url"]
    result = subprocess.run(
        ["node", str(JS / "flow.mjs"), endpoint, f"{pages.url}/index.html"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["title"] == "bctrl test page" and seen["status"] == "clicked 1"
    assert "Chrome" in seen["version"] or "Chromium" in seen["version"]

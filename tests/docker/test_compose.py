"""The compose deployment, as the README brings it up, with the test override (host networking,
locally built PostgreSQL and Redis images, ports off the machine's own services), and the official
SDK's flow against it."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import yaml
from bctrl.legacy import Bctrl
from playwright.sync_api import sync_playwright

from tests.docker.conftest import containers_of
from tests.support import env_with, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (
    ["docker", "compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    else [shutil.which("docker-compose") or "docker-compose"]
)


def merged_config(env: dict, tmp_path: Path) -> Path:
    """docker-compose.yml (as compose itself reads it) with the test override laid over it, minus
    published ports and networks, which host networking makes meaningless. Compose 2.24+ could do
    this with `!reset` in the override; Debian's docker-compose 1.29 refuses `network_mode: host`
    beside a base file's `networks`, so the override is applied here."""
    base = yaml.safe_load(
        subprocess.run(
            [*COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "config"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    text = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], (ROOT / "tests/docker/compose.test.yml").read_text())
    override = yaml.safe_load(text)
    config = _overlay(base, override)
    for service in config["services"].values():
        if service.get("network_mode") == "host":
            service.pop("ports", None)
            service.pop("networks", None)
    path = tmp_path / "compose.merged.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _overlay(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{key: _overlay(base.get(key), value) for key, value in over.items()}}
    return over


def test_compose_deployment_runs_the_sdk_flow(engine, pages, tmp_path):
    api_port, pg_port, redis_port = free_port(), free_port(), free_port()
    key = f"bctrl_compose_{uuid.uuid4().hex}"
    env = env_with(
        BCTRL_API_KEY=key,
        BCTRL_TEST_API_PORT=str(api_port),
        BCTRL_TEST_PG_PORT=str(pg_port),
        BCTRL_TEST_REDIS_PORT=str(redis_port),
    )
    compose = [*COMPOSE, "-p", f"bctrltest{uuid.uuid4().hex[:8]}", "-f", str(merged_config(env, tmp_path))]
    url = f"http://127.0.0.1:{api_port}"
    up = subprocess.run([*compose, "up", "-d", "--no-build"], env=env, cwd=ROOT, capture_output=True, text=True)
    try:
        assert up.returncode == 0, up.stderr
        deadline = time.monotonic() + 120
        while not _ready(url):
            assert time.monotonic() < deadline, _logs(compose, env)
            time.sleep(0.5)

        sdk = Bctrl(api_key=key, base_url=url)
        with sdk.runtimes.started_browser(name="compose") as rt:
            [container] = containers_of(engine, rt.id)
            assert container.image.tags == ["bctrl/chromium:latest"]
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(rt.cdp_url)
                page = browser.contexts[0].new_page()
                page.goto(f"{pages.url}/index.html")
                page.click("#go")
                assert page.text_content("#status") == "clicked 1"
                browser.close()
            run_id = rt.run_id
        assert sdk.runs.get(run_id)["status"] == "completed"
        types = [e["type"] for e in sdk.runs.events.list(run_id, limit=200)["data"]]
        assert "runtime.active" in types and "page.navigated" in types
        deadline = time.monotonic() + 10
        while containers_of(engine, rt.id):
            assert time.monotonic() < deadline, "the runtime's container outlived its stop"
            time.sleep(0.2)
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], env=env, cwd=ROOT, capture_output=True)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _logs(compose: list[str], env: dict) -> str:
    return subprocess.run([*compose, "logs", "--tail", "40"], env=env, capture_output=True, text=True).stdout

"""/readyz says unavailable, naming the part, when what the server needs is not there; --version."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import create_db, drop_db
from tests.metrics.docker_standin import DockerStandIn
from tests.support import env_with, free_port

BIN = Path(sys.executable).parent


def serve(data_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """A `bctrl-server serve` process on SQLite, once it answers /healthz (not /readyz: that is under test)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(BIN / "bctrl-server"), "serve"],
        env=env_with(
            BCTRL_DATA_DIR=str(data_dir), BCTRL_PORT=str(port), BCTRL_API_KEY=f"bctrl_{uuid.uuid4().hex}", **env
        ),
        stdout=open(data_dir.parent / f"server-{port}.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (data_dir.parent / f"server-{port}.log").read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start")


@pytest.fixture
def server_with(tmp_path):
    started: list[subprocess.Popen] = []

    def start(data_dir: Path | None = None, **env: str) -> str:
        process, url = serve(data_dir or tmp_path / uuid.uuid4().hex[:8], **env)
        started.append(process)
        return url

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def readiness(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_a_chromium_path_pointing_nowhere_is_not_ready(server_with):
    url = server_with(BCTRL_CHROMIUM_PATH="/nonexistent")
    answer = readiness(url)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"]
    body = answer.json()
    assert body["status"] == "unavailable" and body["unavailable"] == ["driver"]
    assert body["checks"]["driver"].startswith("unreachable: /nonexistent does not run")
    assert body["checks"]["database"] == "ok" and body["checks"]["data_dir"] == "ok"
    # Asked again (a failure is not cached), the answer is the same.
    assert readiness(url).status_code == 503


def test_a_binary_that_runs_but_fails_and_a_missing_ffmpeg_are_named(server_with, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    answer = readiness(server_with(BCTRL_CHROMIUM_PATH=str(fake), BCTRL_FFMPEG_PATH="/nonexistent/ffmpeg"))
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable" and body["unavailable"] == ["driver", "ffmpeg"]
    assert body["checks"]["driver"] == f"unreachable: {fake} --version exited with 3"
    assert body["checks"]["ffmpeg"].startswith("unreachable: /nonexistent/ffmpeg does not run")


def test_recordings_kept_as_frames_need_no_ffmpeg(server_with):
    ready = readiness(server_with(BCTRL_FFMPEG_PATH="none"))
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database", "driver", "data_dir"}


def test_a_data_directory_that_is_gone_is_not_ready(server_with, tmp_path):
    # On PostgreSQL, so that the database does not live in the directory taken away (a volume unmounted).
    database = create_db()
    try:
        data_dir = tmp_path / "volume"
        url = server_with(data_dir=data_dir, BCTRL_DATABASE_URL=database)
        ready = readiness(url)
        assert ready.status_code == 200, ready.text
        expected = {"database", "driver", "data_dir"} | ({"ffmpeg"} if shutil.which("ffmpeg") else set())
        assert set(ready.json()["checks"]) == expected and set(ready.json()["checks"].values()) == {"ok"}
        shutil.rmtree(data_dir)
        answer = readiness(url)
        assert answer.status_code == 503, answer.text
        assert answer.json()["unavailable"] == ["data_dir"]
        assert answer.json()["checks"]["data_dir"].startswith("unreachable: the data directory does not take writes")
    finally:
        drop_db(database)


def test_docker_driver_whose_engine_stops_answering_is_not_ready(server_with, tmp_path):
    # No Docker engine runs here (the docker tier starts one): a stand-in on a socket, then none.
    engine = DockerStandIn(tmp_path / "docker.sock")
    try:
        url = server_with(BCTRL_DRIVER="docker", DOCKER_HOST=engine.url, BCTRL_READINESS_CACHE_SECONDS="0")
        ready = readiness(url)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["driver"] == "ok"
    finally:
        engine.close()
    answer = readiness(url)
    assert answer.status_code == 503, answer.text
    assert answer.json()["unavailable"] == ["driver"]
    assert answer.json()["checks"]["driver"].startswith("unreachable: the Docker engine does not answer")


def test_version():
    done = subprocess.run([str(BIN / "bctrl-server"), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"bctrl-server {version('bctrl-server')}"

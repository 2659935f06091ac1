"""A first run as `make run` does it: `bctrl-server serve` on the embedded defaults (SQLite, no Redis), the
ready banner once the server listens, the console and the API reference it names, and /docs working with
the network to anything but this server cut off (Swagger UI comes from the package, not a CDN). Also the
key commands an operator runs next: the banner's `keys create` reaches this server's database from the
server's directory, and a key command pointed at an empty directory says so instead of passing quietly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from app.core.config import detect_chromium
from tests.support import env_with, free_port

BIN = Path(sys.executable).parent
SHOTS = Path("/tmp/shots")


class Serving:
    def __init__(self, process: subprocess.Popen, port: int, data_dir: Path) -> None:
        self.process, self.port, self.data_dir = process, port, data_dir
        self.lines: list[str] = []
        self.banner_at: float | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if " is ready" in line and self.banner_at is None:
                self.banner_at = time.monotonic()
            self.lines.append(line)

    def output(self) -> str:
        return "\n".join(self.lines)

    def banner(self) -> list[str]:
        """The banner's lines: from its title to the line that says how to stop the server."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith("bctrl-server ") and "is ready" in line)
        end = next(i for i in range(start, len(self.lines)) if self.lines[i].startswith("Stop it with"))
        return self.lines[start : end + 1]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One server on the embedded defaults, no API key set, browser-use not installed (an empty place)."""
    data_dir = tmp_path_factory.mktemp("first-run") / "data"
    port = free_port()
    env = env_with(
        BCTRL_DATA_DIR=str(data_dir),
        BCTRL_PORT=str(port),
        BCTRL_HOST="127.0.0.1",
        BCTRL_BROWSER_USE_VENV=str(data_dir / "no-engine"),
        COLUMNS="80",
    )
    began = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "bctrl-server"), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    serving = Serving(process, port, data_dir)
    try:
        while serving.banner_at is None:
            assert process.poll() is None, f"the server exited:\n{serving.output()}"
            assert time.monotonic() - began < 90, f"no ready banner after 90 s:\n{serving.output()}"
            time.sleep(0.05)
        time.sleep(0.3)  # the rest of the banner's lines
        yield serving
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_banner_says_where_to_go_once_the_server_listens(first_run):
    # At the moment the banner appeared, the console it names answered at once: it is printed after listening.
    lines = first_run.banner()
    text = "\n".join(lines)
    base = f"http://127.0.0.1:{first_run.port}"
    assert httpx.get(f"{base}/", timeout=5).status_code == 200
    print(text)

    assert re.match(r"^bctrl-server \d+\.\d+\.\d+ is ready$", lines[0]), lines[0]
    fields: dict[str, str] = {}
    for line in lines[2:-1]:
        labelled = re.match(r"^  (\S[\w -]*?)\s{2,}(.*)$", line)
        if labelled:
            name = labelled.group(1)
            fields[name] = labelled.group(2)
        else:  # a value wrapped onto the next line
            fields[name] += " " + line.strip()
    assert fields["Console"] == f"{base}/"
    assert fields["API docs"] == f"{base}/docs"
    assert fields["Data"] == str(first_run.data_dir.resolve())
    assert fields["Database"] == f"SQLite {(first_run.data_dir / 'bctrl.sqlite3').resolve()}"
    chromium = detect_chromium()
    assert fields["Driver"] == f"local, Chromium {chromium}" if chromium else "NOT FOUND" in fields["Driver"]
    assert fields["ffmpeg"].startswith("/") or fields["ffmpeg"].startswith("not found")
    assert fields["browser-use"].startswith("not installed (optional")
    assert fields["browser-use"].endswith(": .venv/bin/bctrl-server agents install") or fields["browser-use"].endswith(
        ": bctrl-server agents install"
    )
    # No BCTRL_API_KEY: the banner says how to make one, naming the data directory (not the default ./data).
    assert fields["API key"].endswith("bctrl-server keys create")
    assert f"BCTRL_DATA_DIR={first_run.data_dir.resolve()}" in fields["API key"]
    # Alembic's line per migration is not printed at the default log level: one line says what was done.
    before = first_run.output().split(lines[0])[0]
    assert "Running upgrade" not in before, before
    applied = re.search(r"^database schema up to date \((\d+) migrations applied\)$", before, re.MULTILINE)
    assert applied and int(applied.group(1)) > 10, before
    # Readable on an 80-column terminal (only a path longer than a line could overflow; none here is).
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]


def test_the_api_reference_works_with_only_this_server_reachable(first_run):
    base = f"http://127.0.0.1:{first_run.port}"
    page_response = httpx.get(f"{base}/docs", timeout=5)
    csp = page_response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self'" in csp and "http" not in csp
    assert not re.search(r"https?://", page_response.text), "the page names another origin"

    refused: list[str] = []
    violations: list[str] = []
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=detect_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def only_here(route):
                if route.request.url.startswith(base + "/"):
                    route.continue_()
                else:
                    refused.append(route.request.url)
                    route.abort()

            page.route("**/*", only_here)
            page.on(
                "console",
                lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
            )
            page.goto(f"{base}/docs")
            # The groups, each saying its generation, then an operation's title as the description names it.
            # (Swagger UI renders a 1 MB description slowly on a busy machine: the wait is generous.)
            page.locator(".opblock-tag", has_text="runtimes (seed)").wait_for(timeout=90_000)
            assert page.get_by_text("Three generations of the API, one server").count() == 1
            assert page.locator(".opblock-tag").count() > 30
            page.locator(".opblock-tag", has_text="health").click()
            page.get_by_text("Liveness check").first.wait_for(timeout=30_000)
            page.locator(".opblock-tag", has_text="runtimes (seed)").click()
            page.get_by_text("Create and start a runtime (seed)").first.wait_for(timeout=30_000)
            page.get_by_text("Liveness check").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "docs-offline.png"))
            page.goto(f"{base}/docs")
            page.locator(".opblock-tag").first.wait_for(timeout=90_000)
            page.screenshot(path=str(SHOTS / "docs-offline-top.png"))
        finally:
            browser.close()
    assert refused == [], f"the page asked for other origins: {refused}"
    assert violations == [], violations


def test_redoc_leads_to_the_reference_and_unknown_assets_are_not_found(first_run):
    base = f"http://127.0.0.1:{first_run.port}"
    redirect = httpx.get(f"{base}/redoc", timeout=5)
    assert redirect.status_code in (302, 307) and redirect.headers["location"].endswith("/docs")
    assert httpx.get(f"{base}/docs/assets/../../etc/passwd", timeout=5).status_code == 404
    assert httpx.get(f"{base}/docs/assets/nothing.js", timeout=5).status_code == 404
    bundle = httpx.get(f"{base}/docs/assets/swagger-ui-bundle.js", timeout=5)
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:2000]


def key_command(lines: list[str]) -> str:
    """The banner's `keys create` command as a shell gets it when pasted (continuation lines included)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("  API key"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  Sign in"))
    text = "\n".join(line.strip() for line in lines[start:end])
    return text.split(" with", 1)[1].strip()


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "bctrl-server"), *args], cwd=cwd, env=env_with(**env), capture_output=True, text=True, timeout=90
    )


def test_the_banners_key_command_mints_a_key_this_server_accepts(first_run):
    # Pasted in a shell in the server's directory (no BCTRL_ setting of its own): without the data directory
    # in the command, the key would land in ./data, a database this server never reads.
    command = key_command(first_run.banner())
    assert "\\\n" in command or command.startswith("BCTRL_DATA_DIR="), command
    made = subprocess.run(
        ["sh", "-c", command], cwd=os.getcwd(), env=env_with(), capture_output=True, text=True, timeout=90
    )
    assert made.returncode == 0, made.stderr
    database = (first_run.data_dir / "bctrl.sqlite3").resolve()
    assert f"Database: SQLite {database}" in made.stderr and "No database" not in made.stderr
    key = made.stdout.strip()
    whoami = httpx.get(
        f"http://127.0.0.1:{first_run.port}/v1/auth/whoami",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert whoami.status_code == 200, whoami.text


def test_key_commands_say_which_database_and_when_it_is_new(tmp_path):
    empty = tmp_path / "elsewhere" / "data"
    database = empty.resolve() / "bctrl.sqlite3"
    # Listing or revoking in a directory with no database stops and says where it looked, creating nothing.
    listed = cli("keys", "list", cwd=tmp_path, BCTRL_DATA_DIR=str(empty))
    assert listed.returncode == 1 and f"No database at {database}" in listed.stderr, listed.stderr
    assert "BCTRL_DATA_DIR" in listed.stderr and not empty.exists()
    # Creating a key there creates the database, and says so before printing the key.
    first = cli("keys", "create", cwd=tmp_path, BCTRL_DATA_DIR=str(empty))
    assert first.returncode == 0, first.stderr
    assert f"No database at {database}: creating a new one" in first.stderr, first.stderr
    assert first.stdout.strip().startswith("bctrl_") and database.exists()
    # Once it exists, each key command names it.
    second = cli("keys", "list", cwd=tmp_path, BCTRL_DATA_DIR=str(empty))
    assert second.returncode == 0 and second.stderr.strip() == f"Database: SQLite {database}", second.stderr
    assert first.stdout.strip()[:12] in second.stdout


def test_the_webdriver_url_refuses_in_the_current_envelope(first_run):
    # A WebDriver client follows connections.webdriverUrl without BCTRL-Version: the refusal is still in the
    # envelope of the generation that handed out the URL.
    base = f"http://127.0.0.1:{first_run.port}"
    for headers in ({}, {"BCTRL-Version": "2026-10-03"}):
        refused = httpx.post(f"{base}/v1/webdriver/run_123/session", json={}, headers=headers, timeout=10)
        assert refused.status_code == 501
        error = refused.json()["error"]
        assert error["code"] == "runtime.webdriver_unavailable" and error["reasonClass"] == "capability_denied"
        assert "cdpUrl" in error["message"]
    # Other paths without the header keep the earlier envelope.
    flat = httpx.get(f"{base}/v1/runtimes", timeout=10)
    assert flat.status_code == 401 and isinstance(flat.json()["error"], str)

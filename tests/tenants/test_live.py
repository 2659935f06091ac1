"""Tenants and keys against real `bctrl-server serve` processes (PostgreSQL, Redis, Chromium), through the
official 0.3 client: a key revoked on one server closes the Playwright CDP connection attached through
the other; an archived subaccount's running browser is stopped and its records kept; `bctrl-server keys
list|revoke`; a changed BCTRL_API_KEY retires the previous bootstrap key."""

from __future__ import annotations

import subprocess
import time
import uuid

import httpx
import pytest
from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError, UnauthorizedError
from bctrl._generated.types import ApiKeyCreateRequestZero
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import BIN, create_db, drop_db, start_server, stop_server
from tests.support import env_with

VERSION = {"BCTRL-Version": "2026-10-03"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two server processes sharing one database and Redis namespace (sweep every second)."""
    tmp = tmp_path_factory.mktemp("tenants")
    url = create_db()
    key = f"bctrl_e2e_{uuid.uuid4().hex}"
    prefix = f"bctrl-test-{uuid.uuid4().hex[:8]}"
    servers = []
    try:
        servers = [start_server(tmp / f"srv{i}", url, key, prefix) for i in range(2)]
        yield servers, url, prefix, tmp
    finally:
        for server in servers:
            stop_server(server)
        drop_db(url)


def cli(pair, *args: str) -> subprocess.CompletedProcess:
    (servers, url, _prefix, _tmp) = pair
    env = env_with(BCTRL_DATABASE_URL=url, BCTRL_DATA_DIR=str(servers[0].data_dir))
    return subprocess.run(
        [str(BIN / "bctrl-server"), "keys", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def cleanup(pair):
    """Browsers to delete in teardown (with the bootstrap key, on the first server), whatever happens."""
    made: list[tuple[str, str | None]] = []
    yield lambda browser_id, subaccount=None: made.append((browser_id, subaccount))
    servers = pair[0]
    for browser_id, subaccount in made:
        client = Bctrl(token=servers[0].api_key, base_url=servers[0].url, bctrl_subaccount_id=subaccount)
        try:
            client.browsers.delete(browser_id)
        except NotFoundError:
            pass
        except Exception:  # an archived subaccount refuses the delete: its browser is stopped already
            pass


def gone(browser, page, seconds: float = 20.0) -> bool:
    """Whether Playwright sees the CDP connection closed within `seconds` (polled through its own loop)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not browser.is_connected():
            return True
        try:
            page.wait_for_timeout(200)
        except PlaywrightError:
            return True
    return not browser.is_connected()


def test_a_key_revoked_on_one_server_closes_its_cdp_connection_on_the_other(pair, cleanup):
    servers = pair[0]
    admin = Bctrl(token=servers[0].api_key, base_url=servers[0].url)
    made = admin.api_keys.create(request=ApiKeyCreateRequestZero(name=unique("cdp")))
    user = Bctrl(token=made.secret, base_url=servers[0].url)
    browser = user.browsers.create(name=unique("revoke"), wait=30)
    cleanup(browser.id)
    cdp_url = browser.current_run.connections.cdp_url
    with sync_playwright() as pw:
        attached = pw.chromium.connect_over_cdp(cdp_url)
        page = attached.contexts[0].new_page() if attached.contexts else attached.new_page()
        page.goto("about:blank")
        assert attached.is_connected()

        # Revoked through the other server: the socket is held by the first, which closes it at its sweep.
        Bctrl(token=servers[0].api_key, base_url=servers[1].url).api_keys.delete(made.data.id)
        assert gone(attached, page), "the CDP connection of a revoked key stayed open"
        with pytest.raises(PlaywrightError):
            pw.chromium.connect_over_cdp(cdp_url, timeout=10_000)
    with pytest.raises(UnauthorizedError):
        user.auth.whoami()
    # The browser itself is the account's: still running, and the admin key still drives it.
    assert admin.browsers.get(browser.id).status == "running"


def test_archiving_a_subaccount_stops_its_browser_and_keeps_its_records(pair, cleanup):
    servers = pair[0]
    admin = Bctrl(token=servers[0].api_key, base_url=servers[0].url)
    sub = admin.subaccounts.create(name=unique("tenant"))
    inside = Bctrl(token=servers[0].api_key, base_url=servers[0].url, bctrl_subaccount_id=sub.id)
    child_secret = admin.api_keys.create(request=ApiKeyCreateRequestZero(type="subaccount", subaccount_id=sub.id))
    browser = inside.browsers.create(name=unique("tenant-browser"), wait=30)
    cleanup(browser.id, sub.id)
    assert browser.status == "running" and browser.space_id == sub.default_space_id
    run_id = browser.current_run.id
    # Invisible to the parent without the header.
    with pytest.raises(NotFoundError):
        admin.browsers.get(browser.id)

    assert admin.subaccounts.archive(sub.id).archived is True
    after = inside.browsers.get(browser.id)
    assert after.status == "idle"
    run = inside.runs.get(run_id)
    assert run.status == "ended" and run.id == run_id
    with pytest.raises(UnauthorizedError):
        Bctrl(token=child_secret.secret, base_url=servers[1].url).browsers.list()
    with httpx.Client(base_url=servers[1].url, timeout=30) as http:
        started = http.post(
            f"/v1/browsers/{browser.id}/start",
            headers={**VERSION, "Authorization": f"Bearer {servers[0].api_key}", "BCTRL-Subaccount-Id": sub.id},
        )
    assert started.status_code == 403 and started.json()["error"]["code"] == "subaccount.archived"


def test_cli_lists_and_revokes_keys(pair):
    servers = pair[0]
    admin = Bctrl(token=servers[0].api_key, base_url=servers[0].url)
    made = admin.api_keys.create(request=ApiKeyCreateRequestZero(name="cli-visible", scopes=["browsers:read"]))
    listed = cli(pair, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if made.data.id in row)
    assert made.data.key_prefix in line and "browsers:read" in line and "active" in line
    assert made.secret not in listed.stdout and servers[0].api_key not in listed.stdout
    assert "bootstrap" in listed.stdout

    revoked = cli(pair, "revoke", made.data.id)
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(UnauthorizedError):
        Bctrl(token=made.secret, base_url=servers[1].url).browsers.list()
    assert made.data.id not in cli(pair, "list").stdout
    assert "revoked" in next(r for r in cli(pair, "list", "--revoked").stdout.splitlines() if made.data.id in r)

    again = cli(pair, "revoke", made.data.id)
    assert again.returncode == 1 and "api_key.not_found" in again.stderr
    bootstrap_id = next(r.split("\t")[0] for r in listed.stdout.splitlines() if "\tbootstrap\t" in r)
    refused = cli(pair, "revoke", bootstrap_id)
    assert refused.returncode == 1 and "BCTRL_API_KEY" in refused.stderr


def test_a_changed_bctrl_api_key_retires_the_previous_one(pair):
    """Last in the module: the pair's own key stops working."""
    servers, url, prefix, tmp = pair
    old = servers[0].api_key
    assert Bctrl(token=old, base_url=servers[0].url).auth.whoami().key_id
    stop_server(servers[1])
    new = f"bctrl_e2e_{uuid.uuid4().hex}"
    servers[1] = start_server(tmp / "srv1-new-key", url, new, prefix)
    for server in servers:  # both processes: the old key is refused, the new one is the default account's
        with pytest.raises(UnauthorizedError):
            Bctrl(token=old, base_url=server.url).auth.whoami()
        assert Bctrl(token=new, base_url=server.url).auth.whoami().key_id

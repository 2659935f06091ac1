"""Per-browser proxies and saved proxies through the official 0.3 client, unchanged, against a real server
and Chromium: a small proxy on 127.0.0.1 (tests/proxy_helpers.py) sees the browser's requests, with
credentials (HTTP Basic, SOCKS5 username/password) and without; a wrong password, a proxy that refuses
connections, unsupported schemes and other accounts' ids are refused with their documented codes;
passwords are never returned."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError, ServiceUnavailableError
from bctrl._generated.types.proxy_create_request import ProxyCreateRequest_Custom, ProxyCreateRequest_ManagedStatic
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import cluster
from tests.e2e.test_current_sdk import VERSION, code_of, error_of, unique
from tests.proxy_helpers import EchoServer, TestProxy

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


@pytest.fixture(scope="module")
def echo():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, echo):
    """A server of its own: its proxy test URL is the echo server on 127.0.0.1."""
    with cluster(tmp_path_factory.mktemp("proxies"), BCTRL_PROXY_TEST_URL=echo.url) as servers:
        yield servers[0]


@pytest.fixture
def proxies(client):
    made: list[str] = []
    yield made.append
    for proxy_id in made:
        try:
            client.proxies.delete(proxy_id)
        except NotFoundError:
            pass


@pytest.fixture
def upstreams():
    made: list[TestProxy] = []

    def make(*args, **kwargs) -> TestProxy:
        made.append(TestProxy(*args, **kwargs))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def raw(live, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {live.api_key}", "BCTRL-Version": VERSION}
    return httpx.request(method, f"{live.url}{path}", headers=headers, timeout=60, **kwargs)


def visit(cdp_url: str, url: str) -> tuple[int | None, str]:
    """(HTTP status, body text) of a page Playwright loads over the browser's CDP URL."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        try:
            page = browser.contexts[0].new_page()
            response = page.goto(url, timeout=20_000)
            return (response.status if response else None), page.inner_text("body")
        finally:
            browser.close()


def test_saved_proxy_crud_never_returns_the_password(live, client, proxies):
    created = client.proxies.create(
        request=ProxyCreateRequest_Custom(
            name=unique("office"), url="http://alice:pa%24%24word@proxy.internal:3128", dns_resolution="local"
        )
    )
    proxies(created.id)
    assert (created.type, created.protocol, created.host, created.port) == ("custom", "http", "proxy.internal", 3128)
    assert created.username == "alice" and created.has_password is True and created.dns_resolution == "local"

    got = client.proxies.get(created.id)
    assert got.id == created.id and got.has_password
    assert created.id in {p.id for p in client.proxies.list(limit=100).data}
    for response in (raw(live, "GET", f"/v1/proxies/{created.id}"), raw(live, "GET", "/v1/proxies")):
        assert response.status_code == 200 and "pa$$word" not in response.text and 'password"' not in response.text

    renamed = client.proxies.update(created.id, name=unique("renamed"), port=3129)
    assert renamed.port == 3129 and renamed.has_password and renamed.username == "alice"
    cleared = client.proxies.update(created.id, password=None)
    assert cleared.has_password is False and cleared.username == "alice"
    switched = client.proxies.update(created.id, url="socks5://bob:x@10.0.0.9:1080")
    assert (switched.protocol, switched.host, switched.port, switched.username) == ("socks5", "10.0.0.9", 1080, "bob")
    assert switched.has_password

    with pytest.raises(ConflictError) as exc:
        client.proxies.create(request=ProxyCreateRequest_Custom(name=switched.name, url="http://h:1"))
    assert code_of(exc) == "proxy.name_conflict"
    with pytest.raises(BadRequestError) as exc:
        client.proxies.update(created.id, country="DE")
    assert code_of(exc) == "proxy.update_fields_invalid"

    deleted = client.proxies.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(NotFoundError) as exc:
        client.proxies.get(created.id)
    assert code_of(exc) == "proxy.not_found"


def test_what_this_deployment_offers_of_managed_proxies(client):
    assert client.proxies.pools.list().data == []
    assert client.proxies.geo.list().data == []
    assert client.proxies.locations.list(country="US").data == []
    with pytest.raises(NotFoundError) as exc:
        client.proxies.pools.get("pool_1")
    assert code_of(exc) == "proxy.pool_not_found"
    with pytest.raises(ApiError) as exc:  # the 0.3 client declares no 404 for create
        client.proxies.create(request=ProxyCreateRequest_ManagedStatic(pool_id="pool_1"))
    assert exc.value.status_code == 404 and code_of(exc) == "proxy.pool_not_found"
    with pytest.raises(BadRequestError) as exc:
        client.browsers.create(name=unique("managed"), proxy={"type": "managed-rotating", "country": "US"})
    assert code_of(exc) == "proxy.managed_rotating.provider_unavailable"


def test_bad_proxy_inputs_are_refused(client):
    for proxy, code in (
        ("ftp://h:21", "proxy.protocol_unsupported"),
        ("socks4://h:1080", "proxy.protocol_unsupported"),
        ("http://h:99999", "proxy.url_invalid"),
        ({"protocol": "gopher", "host": "h", "port": 70}, "proxy.protocol_unsupported"),
        ({"url": "http://h:1", "udpMode": "required"}, "proxy.udp_protocol_unsupported"),
    ):
        with pytest.raises(BadRequestError) as exc:
            client.browsers.create(name=unique("bad"), proxy=proxy)
        assert code_of(exc) == code, proxy
    with pytest.raises(BadRequestError) as exc:
        client.proxies.create(request=ProxyCreateRequest_Custom(url="ftp://h:21"))
    assert code_of(exc) == "proxy.protocol_unsupported"
    with pytest.raises(NotFoundError) as exc:
        client.browsers.create(name=unique("unknown"), proxy={"id": "00000000-0000-7000-8000-000000000000"})
    assert code_of(exc) == "proxy.not_found"


def test_another_accounts_proxy_is_not_found(client, other_client, browsers):
    theirs = other_client.proxies.create(request=ProxyCreateRequest_Custom(url="http://u:secret@127.0.0.1:9"))
    try:
        for call in (
            lambda: client.proxies.get(theirs.id),
            lambda: client.proxies.test(theirs.id),
            lambda: client.proxies.delete(theirs.id),
            lambda: client.browsers.create(name=unique("stolen"), proxy={"id": theirs.id}),
            lambda: client.browsers.create(name=unique("stolen"), proxy=theirs.id),
        ):
            with pytest.raises(NotFoundError) as exc:
                call()
            assert code_of(exc) == "proxy.not_found"
        assert theirs.id not in {p.id for p in client.proxies.list(limit=100).data}
    finally:
        other_client.proxies.delete(theirs.id)


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_test_reports_what_the_far_side_saw(client, proxies, upstreams, echo, kind):
    upstream = upstreams(kind, username="alice", password="right")
    good = client.proxies.create(request=ProxyCreateRequest_Custom(url=upstream.url_with("alice", "right")))
    proxies(good.id)
    result = client.proxies.test(good.id)
    # The proxy leaves from 127.0.0.2: the echo saw that, not the server's own 127.0.0.1.
    assert result.ok is True and result.exit_ip == "127.0.0.2" and result.http_status == 200, result
    assert result.latency_seconds is not None and upstream.seen == [echo.url.split("/")[2]]

    wrong = client.proxies.create(request=ProxyCreateRequest_Custom(url=upstream.url_with("alice", "wrong")))
    proxies(wrong.id)
    refused = client.proxies.test(wrong.id)
    assert refused.ok is False and refused.exit_ip is None
    assert refused.code == "proxy.auth_rejected" and "refused the credentials" in refused.error
    assert "wrong" not in json.dumps(refused.dict()) and upstream.refused == ["alice"]


def test_test_of_a_proxy_that_refuses_connections(client, proxies, upstreams):
    gone = upstreams("http")
    url = gone.url
    gone.close()
    saved = client.proxies.create(request=ProxyCreateRequest_Custom(url=url))
    proxies(saved.id)
    result = client.proxies.test(saved.id)
    assert result.ok is False and result.code == "proxy.connection_refused" and "refused the connection" in result.error


def test_a_browser_leaves_through_its_saved_proxy(client, browsers, proxies, upstreams, pages):
    upstream = upstreams("http", username="alice", password="right")
    saved = client.proxies.create(request=ProxyCreateRequest_Custom(url=upstream.url_with("alice", "right")))
    proxies(saved.id)
    created = client.browsers.create(name=unique("proxied"), proxy={"id": saved.id}, web_rtc_proxy_only=True, wait=30)
    browsers(created.id)
    assert created.proxy.id == saved.id and created.web_rtc_proxy_only is True
    status, text = visit(created.current_run.connections.cdp_url, f"{pages.url}/index.html")
    assert status == 200 and text
    assert pages.url.split("/")[2] in upstream.seen and upstream.refused == []


def test_an_inline_socks5_proxy_with_credentials_and_a_wrong_password(live, client, browsers, upstreams, pages):
    secret = "pw-7f3a9c41"
    upstream = upstreams("socks5", username="alice", password=secret)
    good = client.browsers.create(name=unique("socks"), proxy=upstream.url_with("alice", secret), wait=30)
    browsers(good.id)
    shown = good.proxy.dict() if hasattr(good.proxy, "dict") else good.proxy
    assert secret not in json.dumps(shown, default=str)
    got = client.browsers.get(good.id)
    assert secret not in got.json() and '"hasPassword":true' in got.json().replace(" ", "")
    status, _ = visit(good.current_run.connections.cdp_url, f"{pages.url}/index.html")
    assert status == 200 and pages.url.split("/")[2] in upstream.seen

    bad = client.browsers.create(
        name=unique("socks-wrong"),
        proxy={
            "type": "custom",
            "protocol": "socks5",
            "host": "127.0.0.1",
            "port": upstream.port,
            "username": "alice",
            "password": "wrong",
        },
        wait=30,
    )
    browsers(bad.id)
    status, text = visit(bad.current_run.connections.cdp_url, f"{pages.url}/index.html")
    # The page does not load: the egress proxy answers 502 naming the refusal (never the password).
    assert status == 502 and "proxy.auth_rejected" in text and "wrong" not in text
    assert "alice" in upstream.refused
    # Never logged, never in an event of the browser.
    events = raw(live, "GET", "/v1/events", params={"browser": good.id, "limit": 100})
    assert events.status_code == 200 and events.json()["data"] and secret not in events.text
    assert secret not in live.log() and "wrong" not in raw(live, "GET", "/v1/events", params={"browser": bad.id}).text


def test_a_proxy_that_refuses_connections_fails_the_start(client, browsers, upstreams):
    gone = upstreams("http")
    url = gone.url
    gone.close()
    with pytest.raises(ServiceUnavailableError) as exc:
        client.browsers.create(name=unique("refused"), proxy=url, wait=30)
    browsers(error_of(exc)["details"]["runtimeId"])
    assert code_of(exc) == "runtime.proxy_unavailable"
    assert "proxy.connection_refused" in error_of(exc)["message"]
    kept = client.browsers.get(error_of(exc)["details"]["runtimeId"])
    assert kept.status == "idle" and kept.current_run is None


def test_a_deleted_saved_proxy_fails_the_next_start(client, browsers, upstreams):
    upstream = upstreams("http")
    saved = client.proxies.create(request=ProxyCreateRequest_Custom(url=upstream.url))
    created = client.browsers.create(name=unique("orphan"), proxy={"id": saved.id}, wait=30)
    browsers(created.id)
    assert created.current_run.status == "active"
    client.browsers.stop(created.id, wait=30)
    client.proxies.delete(saved.id)
    # The start fails (the run with it) naming the missing proxy; the browser stays, idle.
    with pytest.raises(ServiceUnavailableError) as exc:
        client.browsers.start(created.id, wait=30)
    assert code_of(exc) == "proxy.not_found" and saved.id in error_of(exc)["message"]
    assert client.browsers.get(created.id).status == "idle"

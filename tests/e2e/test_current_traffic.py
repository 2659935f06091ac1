"""networkTraffic through the official 0.3 client, unchanged, against a real server process and real
Chromium: what a browser's rules refuse never reaches the page's server, each refused request is a
`network.blocked` run event naming its rule, a client's own Playwright route() still works beside them,
and bad rules are refused with 400."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError
from playwright.sync_api import sync_playwright
from websockets.sync.client import connect

from tests.e2e.test_current_sdk import code_of, error_of, unique

PAGES = {
    "/img.html": b'<html><body><img id="pic" src="/pixel.png"><p id="done">img</p></body></html>',
    "/scripts.html": (
        b'<html><head><script src="/blocked.js"></script><script src="/ok.js"></script></head>'
        b'<body><p id="done">scripts</p></body></html>'
    ),
    "/allow/page.html": (
        b'<html><head><script src="/allow/ok.js"></script><script src="/other/no.js"></script></head>'
        b"<body><p>allowed</p></body></html>"
    ),
    "/ads.html": (
        b"<html><body><script>"
        b"window.adResult = fetch('http://ad.doubleclick.net/pagead/show.js?slot=1')"
        b".then(() => 'loaded', e => 'refused: ' + e.message);"
        b"</script></body></html>"
    ),
    "/routed.html": b'<html><head><script src="/routed.js"></script></head><body></body></html>',
    "/worker.html": (
        b"<html><body><script>window.workerSays = new Promise(r => {"
        b"const w = new Worker('/worker.js'); w.onmessage = e => r(e.data); });</script></body></html>"
    ),
    "/beacon.html": (
        b"<html><body><script>window.queued = navigator.sendBeacon('/beacon', 'bye');"
        b"window.posted = fetch('/ok.js', {method: 'POST', body: 'still'}).then(r => r.status);</script></body></html>"
    ),
}
SCRIPTS = {
    "/blocked.js": b"window.blockedRan = true;",
    "/ok.js": b"window.okRan = true;",
    "/allow/ok.js": b"window.allowedRan = true;",
    "/other/no.js": b"window.otherRan = true;",
    "/routed.js": b"window.fromServer = true;",
    "/worker.js": (b"fetch('/blocked.js').then(() => postMessage('loaded'), e => postMessage('refused'));"),
}
# A 2x1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000010806000000f4227f8a0000000e49444154789c63f8cfc0f01f84"
    "0111f703fde3c5f5ef0000000049454e44ae426082"
)


class RecordingServer:
    """Test pages on 127.0.0.1 that remember every path asked for."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                seen.append(path)
                if path in PAGES:
                    body, kind = PAGES[path], "text/html"
                elif path in SCRIPTS:
                    body, kind = SCRIPTS[path], "application/javascript"
                elif path == "/pixel.png":
                    body, kind = PIXEL, "image/png"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                seen.append("POST " + self.path.split("?", 1)[0])
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site():
    server = RecordingServer()
    yield server
    server.close()


def blocked_events(client, run_id: str, count: int, timeout: float = 15) -> list:
    """The run's `network.blocked` events once there are `count` of them (events are written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.events.list(run=run_id, type="network.blocked", order="asc", limit=100).data
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def start(client, browsers, **traffic):
    created = client.browsers.create(name=unique("traffic"), wait=30, network_traffic=traffic or None)
    browsers(created.id)
    assert created.status == "running", created
    return created


def test_a_blocked_resource_type_never_loads_and_is_a_run_event(client, browsers, site):
    guarded = start(client, browsers, blockResourceTypes=["image"])
    assert guarded.network_traffic.block_resource_types == ["image"]
    plain = start(client, browsers)
    widths = {}
    with sync_playwright() as pw:
        for name, browser in (("guarded", guarded), ("plain", plain)):
            cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
            page = cdp.contexts[0].new_page()  # a new page: guarded from its first request
            page.goto(f"{site.url}/img.html?{name}")
            page.wait_for_load_state("load")
            widths[name] = page.evaluate("document.getElementById('pic').naturalWidth")
            cdp.close()
    assert widths == {"guarded": 0, "plain": 2}
    # The image server saw the plain browser's request only; both pages loaded.
    assert site.seen.count("/img.html") == 2 and site.seen.count("/pixel.png") == 1

    events = blocked_events(client, guarded.current_run.id, 1)
    assert [(e.type, e.category, e.outcome) for e in events] == [("network.blocked", "network", "denied")]
    data = events[0].data
    assert data["url"] == f"{site.url}/pixel.png" and data["resourceType"] == "image"
    assert data["rule"] == "blockResourceTypes" and data["match"] == "image" and events[0].page_id
    assert blocked_events(client, plain.current_run.id, 1, timeout=1) == []


def test_a_beacon_is_refused_while_other_posts_go_through(client, browsers, site):
    browser = start(client, browsers, blockResourceTypes=["beacon", "font"])
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        page = cdp.contexts[0].new_page()
        page.goto(f"{site.url}/beacon.html")
        queued, posted = page.evaluate("Promise.all([window.queued, window.posted])")
        [event] = blocked_events(client, browser.current_run.id, 1)
        cdp.close()
    # sendBeacon only queues: the page cannot tell; the server never saw it, the fetch POST went through.
    assert queued is True and posted == 204
    assert event.data["url"] == f"{site.url}/beacon" and event.data["resourceType"] == "beacon"
    assert event.data["rule"] == "blockResourceTypes" and event.data["method"] == "POST"
    assert "POST /ok.js" in site.seen and "POST /beacon" not in site.seen


def test_rules_hold_in_a_cross_site_frame_and_a_popup(client, browsers, site):
    browser = start(client, browsers, blockResourceTypes=["image"])
    other_site = site.url.replace("127.0.0.1", "localhost")  # another site: its frame is a process of its own
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        page = cdp.contexts[0].new_page()
        page.goto(f"{site.url}/scripts.html")
        page.evaluate(
            "url => new Promise(r => { const f = document.createElement('iframe'); f.onload = r; f.src = url;"
            " document.body.appendChild(f); })",
            f"{other_site}/img.html?frame",
        )
        frame = next(f for f in page.frames if "frame" in f.url)
        in_frame = frame.evaluate("document.getElementById('pic').naturalWidth")
        with page.expect_popup() as opened:
            page.evaluate("url => window.open(url)", f"{site.url}/img.html?popup")
        popup = opened.value
        popup.wait_for_load_state("load")
        in_popup = popup.evaluate("document.getElementById('pic').naturalWidth")
        cdp.close()
    assert in_frame == 0 and in_popup == 0
    assert site.seen.count("/img.html") == 2 and "/pixel.png" not in site.seen
    events = blocked_events(client, browser.current_run.id, 2)
    assert sorted(e.data["url"] for e in events) == [f"{site.url}/pixel.png", f"{other_site}/pixel.png"]


def test_url_blocklist_refuses_a_script_and_route_still_works(client, browsers, site):
    browser = start(client, browsers, urlBlocklist=[f"{site.url}/blocked.*", "tracker.example"])
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        page = cdp.contexts[0].pages[0]  # the page the browser started with
        page.goto(f"{site.url}/scripts.html")
        ran = page.evaluate("[!!window.blockedRan, !!window.okRan]")
        # A client's own interception still sees (and may answer) what no rule refuses.
        page.route("**/routed.js", lambda route: route.fulfill(body="window.fromRoute = true;"))
        page.goto(f"{site.url}/routed.html")
        routed = page.evaluate("[!!window.fromRoute, !!window.fromServer]")
        # A worker's own requests too.
        page.goto(f"{site.url}/worker.html")
        from_worker = page.evaluate("window.workerSays")
        cdp.close()
    assert ran == [False, True] and routed == [True, False] and from_worker == "refused"
    assert "/blocked.js" not in site.seen and "/ok.js" in site.seen and "/routed.js" not in site.seen
    assert "/worker.js" in site.seen

    first, by_worker = blocked_events(client, browser.current_run.id, 2)
    assert first.data["url"] == f"{site.url}/blocked.js" and first.data["resourceType"] == "script"
    assert first.data["rule"] == "urlBlocklist" and first.data["match"] == f"{site.url}/blocked.*"
    assert by_worker.data["url"] == f"{site.url}/blocked.js" and by_worker.data["rule"] == "urlBlocklist"


def test_the_first_page_is_guarded_as_soon_as_the_browser_is_running(client, browsers, site):
    """A bare CDP client that navigates the browser's first page the moment create answers: the rules
    are armed on that page before the browser is reported running."""
    browser = start(client, browsers, urlBlocklist=[f"{site.url}/img.html"])
    with connect(browser.current_run.connections.cdp_url, max_size=None) as ws:
        calls = iter(range(1, 100))

        def call(method: str, params: dict, session: str | None = None) -> dict:
            ident = next(calls)
            ws.send(
                json.dumps(
                    {"id": ident, "method": method, "params": params, **({"sessionId": session} if session else {})}
                )
            )
            while (answer := json.loads(ws.recv(timeout=10))).get("id") != ident:
                pass
            return answer["result"]

        [first] = [t for t in call("Target.getTargets", {})["targetInfos"] if t["type"] == "page"]
        session = call("Target.attachToTarget", {"targetId": first["targetId"], "flatten": True})["sessionId"]
        navigated = call("Page.navigate", {"url": f"{site.url}/img.html"}, session)
    assert navigated.get("errorText") == "net::ERR_BLOCKED_BY_CLIENT" and site.seen == []
    [event] = blocked_events(client, browser.current_run.id, 1)
    assert event.data["resourceType"] == "document" and event.page_id == first["targetId"]


def test_url_allowlist_lets_only_listed_urls_load(client, browsers, site):
    browser = start(client, browsers, urlAllowlist=[f"{site.url}/allow/*"])
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        page = cdp.contexts[0].new_page()
        page.goto(f"{site.url}/allow/page.html")
        ran = page.evaluate("[!!window.allowedRan, !!window.otherRan]")
        with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
            page.goto(f"{site.url}/img.html")
        cdp.close()
    assert ran == [True, False]
    assert site.seen == ["/allow/page.html", "/allow/ok.js"]

    # The browser's own favicon requests are refused too (they are not on the list).
    events = blocked_events(client, browser.current_run.id, 3)
    assert sorted((e.data["url"], e.data["resourceType"], e.data["rule"]) for e in events) == [
        (f"{site.url}/favicon.ico", "other", "urlAllowlist"),
        (f"{site.url}/img.html", "document", "urlAllowlist"),
        (f"{site.url}/other/no.js", "script", "urlAllowlist"),
    ]


def test_block_ads_refuses_a_listed_host_in_the_browser(client, browsers, site):
    browser = start(client, browsers, blockAds=True)
    with sync_playwright() as pw:
        cdp = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        page = cdp.contexts[0].new_page()
        page.goto(f"{site.url}/ads.html")
        result = page.evaluate("window.adResult")
        cdp.close()
    assert result.startswith("refused")
    [event] = blocked_events(client, browser.current_run.id, 1)
    # The query is not kept; the host never had to exist: the browser refused before asking anyone.
    assert event.data["url"] == "http://ad.doubleclick.net/pagead/show.js"
    assert event.data["rule"] == "blockAds" and event.data["match"] == "doubleclick.net"
    failed = client.events.list(run=browser.current_run.id, type="network.failed", limit=50).data
    assert any("ERR_BLOCKED_BY_CLIENT" in (e.data.get("errorText") or "") for e in failed)


@pytest.mark.parametrize(
    "traffic, field",
    [
        ({"blockResourceTypes": ["script"]}, "networkTraffic.blockResourceTypes.0"),
        ({"urlBlocklist": ["not a pattern"]}, "networkTraffic.urlBlocklist.0"),
        ({"urlAllowlist": ["https://example.com/\\path"]}, "networkTraffic.urlAllowlist.0"),
        ({"urlBlocklist": [f"h{i}.example.com" for i in range(1001)]}, "networkTraffic.urlBlocklist"),
    ],
)
def test_bad_rules_are_refused(client, browsers, traffic, field):
    name = unique("bad-traffic")
    with pytest.raises(BadRequestError) as refused:
        client.browsers.create(name=name, network_traffic=traffic)
    assert code_of(refused) == "request.invalid"
    assert field in [f["field"] for f in error_of(refused)["details"]["fields"]]
    assert client.browsers.list(name=name).data == []


def test_a_saver_level_is_refused_saying_why(client, browsers):
    name = unique("saver")
    with pytest.raises(BadRequestError) as refused:
        client.browsers.create(name=name, network_traffic={"saver": "high"})
    assert code_of(refused) == "browser.option_unsupported" and "saver" in error_of(refused)["message"]
    assert client.browsers.list(name=name).data == []

    created = client.browsers.create(name=name, wait=30, network_traffic={"saver": "none"})
    browsers(created.id)
    with pytest.raises(ApiError) as refused:  # the 0.3 client types no 400 of an update
        client.browsers.update(created.id, network_traffic={"saver": "light"})
    assert refused.value.status_code == 400 and refused.value.body["error"]["code"] == "browser.option_unsupported"
    # Patterns are kept with scheme and host lower-cased; rules apply from the next start.
    updated = client.browsers.update(
        created.id, network_traffic={"blockTrackers": True, "urlBlocklist": ["Ads.Example", "HTTPS://X.Example/A*"]}
    )
    assert updated.network_traffic.block_trackers is True
    assert updated.network_traffic.url_blocklist == ["ads.example", "https://x.example/A*"]

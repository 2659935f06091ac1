"""networkTraffic on the Docker driver: the run observer enforces the rules of a browser in a container
as it does for a local one (the rules reach it in the driver state)."""

from __future__ import annotations

import uuid

from bctrl._generated.errors import NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_traffic import blocked_events, site  # noqa: F401


def test_a_blocked_image_and_script_never_load_in_the_container(dclient, site):  # noqa: F811
    browser_id = None
    try:
        created = dclient.browsers.create(
            name=f"docker-traffic-{uuid.uuid4().hex[:6]}",
            network_traffic={"blockResourceTypes": ["image"], "urlBlocklist": [f"{site.url}/blocked.js"]},
            wait=60,
        )
        browser_id = created.id
        assert created.status == "running"
        with sync_playwright() as pw:
            cdp = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
            page = cdp.contexts[0].new_page()
            page.goto(f"{site.url}/img.html")
            width = page.evaluate("document.getElementById('pic').naturalWidth")
            page.goto(f"{site.url}/scripts.html")
            ran = page.evaluate("[!!window.blockedRan, !!window.okRan]")
            cdp.close()
        assert width == 0 and ran == [False, True]
        assert "/pixel.png" not in site.seen and "/blocked.js" not in site.seen and "/ok.js" in site.seen
        events = blocked_events(dclient, created.current_run.id, 2)
        assert sorted(e.data["rule"] for e in events) == ["blockResourceTypes", "urlBlocklist"]
    finally:
        if browser_id:
            try:
                dclient.browsers.delete(browser_id)
            except NotFoundError:
                pass

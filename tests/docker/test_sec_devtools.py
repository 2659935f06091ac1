"""Security (Docker tier, host networking): a browser cannot reach another browser's debugging port on
this host's loopback (its page list, opening and closing its tabs) through the egress proxy."""

from __future__ import annotations

import uuid

from bctrl import Bctrl
from bctrl._generated.errors import NotFoundError
from playwright.sync_api import sync_playwright

from tests.docker.conftest import containers_of


def test_another_browsers_debugging_port_is_refused(dlive, engine):
    client = Bctrl(token=dlive.api_key, base_url=dlive.url)
    made = []
    try:
        for name in ("a", "b"):
            made.append(client.browsers.create(name=f"{name}-{uuid.uuid4().hex[:6]}", wait=60))
        [container] = containers_of(engine, made[1].id)
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(made[0].current_run.connections.cdp_url)
            page = browser.contexts[0].new_page()
            response = page.goto(f"http://127.0.0.1:{env['BCTRL_CDP_PORT']}/json/list", timeout=15_000)
            status, text = (response.status if response else None), page.inner_text("body")
            browser.close()
        assert status == 403 and "webSocketDebuggerUrl" not in text, (status, text[:200])
    finally:
        for browser in made:
            try:
                client.browsers.delete(browser.id)
            except NotFoundError:
                pass

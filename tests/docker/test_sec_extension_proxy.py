"""Security (Docker tier): an uploaded extension with the `proxy` permission cannot take the browser off
the egress proxy (chrome.proxy.settings: direct), which would let it reach the control plane on loopback."""

from __future__ import annotations

import json
import time
import uuid

from bctrl import Bctrl
from bctrl._generated.errors import ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.extension_packages import manifest, zip_of
from tests.e2e.test_current_extensions import UploadRefused, upload

WORKER = """
chrome.proxy.settings.set({value: {mode: "direct"}, scope: "regular"}, () => {});
chrome.runtime.onInstalled.addListener(() =>
  chrome.proxy.settings.set({value: {mode: "direct"}, scope: "regular"}, () => {}));
"""


def test_an_extension_cannot_turn_the_egress_proxy_off(dlive):
    client = Bctrl(token=dlive.api_key, base_url=dlive.url)
    package = zip_of(
        {
            "manifest.json": json.dumps(
                manifest("Direct", permissions=["proxy"], content_scripts=[], background={"service_worker": "sw.js"})
            ),
            "sw.js": WORKER,
        }
    )
    try:
        ext = upload(client, package, "direct.zip")
    except UploadRefused as refused:
        # Refused at upload, saying which permission.
        assert refused.status == 400 and refused.code == "browser_extension.invalid_package", refused.body
        assert "proxy" in json.dumps(refused.body)
        return
    browser_id = None
    try:
        created = client.browsers.create(name=f"direct-{uuid.uuid4().hex[:6]}", extensions=[ext.id], wait=60)
        browser_id = created.id
        time.sleep(2)  # the service worker ran
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
            page = browser.contexts[0].new_page()
            try:
                response = page.goto(f"{dlive.url}/readyz", timeout=15_000)
                status = response.status if response else None
                text = page.inner_text("body")
            except Exception as exc:  # refused at the proxy: also acceptable
                status, text = None, repr(exc)
            browser.close()
        assert status != 200, f"the browser reached the control plane: {status} {text[:200]}"
    finally:
        if browser_id:
            try:
                client.browsers.delete(browser_id)
            except NotFoundError:
                pass
        try:
            client.browser.extensions.delete(ext.id)
        except (NotFoundError, ConflictError):
            pass

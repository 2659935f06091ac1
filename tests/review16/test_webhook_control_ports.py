"""With BCTRL_WEBHOOK_EGRESS=private, webhooks may call loopback, but not the control plane's own ports
that drains refuse too: a browser's debugging port (Chrome answers /json/close/<target> to any method,
so a tenant could close another tenant's pages) and the egress proxy's port."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from bctrl._generated.errors import BadRequestError

from tests.webhooks.conftest import receiver, sdk_of, wh_server  # noqa: F401 (fixtures)


@pytest.fixture
async def wsdk(wh_server):  # noqa: F811
    async with sdk_of(wh_server) as client:
        yield client


async def refused(client, url: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.webhooks.create(url=url, events=["*"])
    assert caught.value.body["error"]["code"] == "webhook.url_not_allowed", caught.value.body


async def test_a_webhook_cannot_target_a_browser_debugging_port_or_the_egress_proxy(wh_server, wsdk, receiver):  # noqa: F811
    # Loopback itself is allowed in this mode (the receiver): only the control plane's ports are not.
    assert (await wsdk.webhooks.create(url=receiver().url, events=["*"])).id
    browser = await wsdk.browsers.create(wait=30, recording=False)
    try:
        ports = wh_server.ctx.driver.devtools_ports()
        assert ports, "the running browser has a debugging port"
        for port in ports:
            await refused(wsdk, f"http://127.0.0.1:{port}/json/close/any")
            await refused(wsdk, f"http://localhost:{port}/json/version")
    finally:
        await wsdk.browsers.stop(browser.id, wait=30)
    proxy = urlsplit(wh_server.ctx.driver.proxy_url)
    await refused(wsdk, f"http://127.0.0.1:{proxy.port}/")

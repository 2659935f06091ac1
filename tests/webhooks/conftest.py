"""Webhook tests: a server per backend whose webhooks may reach loopback (BCTRL_WEBHOOK_EGRESS=private)
and retry fast, the official 0.3 client, and receivers on 127.0.0.1 (receiver.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bctrl import AsyncBctrl

from tests.conftest import make_settings, running_app
from tests.sdk import sdk_of
from tests.webhooks.receiver import Receiver

FAST = dict(
    webhook_egress="private",
    webhook_poll_seconds=0.1,
    webhook_retry_base_seconds=0.2,
    webhook_retry_max_seconds=0.5,
    webhook_timeout_seconds=3.0,
)


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
async def wh_server(request, tmp_path_factory, pg_url):
    backend = request.param
    settings = make_settings(tmp_path_factory.mktemp(f"wh-{backend}"), backend, pg_url, **FAST)
    async with running_app(settings) as srv:
        yield srv


@pytest.fixture
async def sdk(wh_server) -> AsyncIterator[AsyncBctrl]:
    async with sdk_of(wh_server, "wh") as client:
        yield client


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw).start())
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
async def browsers(sdk):
    """Browsers a test started: stopped in teardown, whatever the test did."""
    made: list[str] = []
    yield made
    for browser_id in made:
        try:
            await sdk.browsers.stop(browser_id, wait=30)
        except Exception:  # already stopped or gone: fine
            pass

"""A cap lowered below what is already used, on a server where a browser minute costs 600 cents (10
cents a second, so a short run crosses whole-cent caps): `reached` at once, new starts refused, the
running browser goes on; raised again, starts are allowed; the warning threshold."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from bctrl._generated.errors import ConflictError, PaymentRequiredError

from tests.usage.conftest import sdk_of
from tests.usage.test_usage import answers_cdp, error_of

PRICE = 600.0  # cents a browser minute


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_a_cap_lowered_below_use_refuses_new_starts_and_keeps_the_running_browser(make_server, backend):
    async with make_server(backend, price_cents_per_browser_minute=PRICE) as server, sdk_of(server) as sdk:
        started: list[str] = []
        first = await sdk.browsers.create(wait=30, recording=False)
        started.append(first.id)
        try:
            assert first.status == "running"
            await asyncio.sleep(1.2)  # at least 12 cents used

            cap = await sdk.account.spending_cap.update(currency="USD", amount=5)
            assert cap.status == "reached" and cap.usage.amount >= 12
            space_cap = await sdk.spaces.spending_cap.update("default", currency="USD", amount=1)
            assert space_cap.status == "reached" and space_cap.space_id == first.space_id
            await sdk.spaces.spending_cap.update("default", currency="USD", amount=None)

            before = len((await sdk.browsers.list()).data)
            with pytest.raises(PaymentRequiredError) as refused:
                started.append((await sdk.browsers.create(wait=10, recording=False)).id)
            assert error_of(refused)["code"] == "spending_cap.reached"
            assert len((await sdk.browsers.list()).data) == before  # nothing half-created
            assert error_of(refused)["details"]["used"] >= 12
            usage = await sdk.usage.get()
            assert usage.is_blocked and usage.blocked_reasons == ["spendingCapReached"]
            assert usage.credits.monthly_limit == 5 and usage.credits.monthly_remaining == 0

            await asyncio.sleep(0.5)  # the running browser goes on, and its usage with it
            assert (await sdk.browsers.get(first.id)).status == "running"
            assert await answers_cdp(sdk, first.id)
            assert (await sdk.account.spending_cap.get()).usage.amount > cap.usage.amount

            # Raised above use: starts again; a low warning threshold says `warning`.
            raised = await sdk.account.spending_cap.update(
                currency="USD",
                amount=1_000_000,
                request_options={"additional_body_parameters": {"warnAtPercent": 0.001}},
            )
            assert raised.status == "warning" and raised.warn_at_percent == 0.001
            assert (await sdk.account.spending_cap.update(currency="USD")).warn_at_percent == 0.001  # kept
            started.append((await sdk.browsers.create(wait=30, recording=False)).id)
            assert (await sdk.browsers.stop(started[-1], wait=30)).status == "idle"
            assert not (await sdk.usage.get()).is_blocked
        finally:
            for browser_id in started:
                with contextlib.suppress(ConflictError):  # stopped already
                    await sdk.browsers.stop(browser_id, wait=30)

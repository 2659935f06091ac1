"""`/v1/usage`, spending caps and `/v1/locations` through the official 0.3 client, on both backends:
usage measured from a real Chromium run and a stored file, caps refusing new starts (402
`spending_cap.reached`) while running browsers go on, space cap beside account cap, bad input."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from bctrl._generated.errors import BadRequestError, NotFoundError, PaymentRequiredError

from app.accounts.models import Account
from tests.usage.conftest import sdk_of

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

NO_CHANGE = {"amount": None}


def error_of(raised) -> dict:
    return raised.value.body["error"]


async def answers_cdp(client, browser_id: str) -> bool:
    """The browser's pages, read over CDP from the real Chromium: only a live browser answers."""
    got = await client.http.get(f"/v1/browsers/{browser_id}/pages", headers=client.raw_headers)
    return got.status_code == 200 and len(got.json()["data"]["data"]) >= 1


async def running_browser(client, track, **body):
    made = await client.browsers.create(wait=30, recording=False, **body)
    track(client, made.id)
    assert made.status == "running", made
    return made


async def test_every_route_answers_its_documented_shape(sdk):
    usage = await sdk.usage.get()
    assert usage.object == "account.usage" and usage.organization_id == sdk.account_id
    assert usage.is_blocked is False and usage.blocked_reasons == []
    assert usage.cycle.started_at.day == 1 and usage.cycle.ends_at > usage.cycle.started_at
    assert usage.credits.monthly_used == 0 and usage.credits.monthly_limit == 0
    assert usage.measured["runs"] == 0 and usage.measured["browserSeconds"] == 0

    cap = await sdk.account.spending_cap.get()
    assert (cap.object, cap.scope, cap.amount, cap.status, cap.currency) == (
        "spending_cap",
        "organization",
        None,
        "disabled",
        "USD",
    )
    assert cap.warn_at_percent == 80 and cap.usage.amount == 0 and cap.period.start == usage.cycle.started_at

    set_ = await sdk.account.spending_cap.update(currency="USD", amount=5000, idempotency_key="cap-once")
    assert set_.amount == 5000 and set_.status == "ok"
    again = await sdk.account.spending_cap.update(currency="USD", amount=5000, idempotency_key="cap-once")
    assert again == set_
    assert (await sdk.account.spending_cap.get()).amount == 5000
    # currency alone changes nothing; null disables.
    assert (await sdk.account.spending_cap.update(currency="USD")).amount == 5000
    assert (await sdk.account.spending_cap.update(currency="USD", amount=None)).status == "disabled"

    space = await sdk.spaces.create(name="capped")
    scap = await sdk.spaces.spending_cap.get(space.id)
    assert scap.scope == "space" and scap.space_id == space.id and scap.status == "disabled"
    scap = await sdk.spaces.spending_cap.update(space.id, currency="USD", amount=200)
    assert scap.amount == 200 and scap.status == "ok"
    assert (await sdk.spaces.spending_cap.get("default")).amount is None  # other spaces unaffected
    assert (await sdk.account.spending_cap.get()).amount is None

    locations = await sdk.locations.list()
    assert locations.has_more is False and [loc.id for loc in locations.data] == ["local"]
    assert locations.data[0].object == "location" and locations.data[0].status == "available"
    assert locations.data[0].home_regions == ["local"]
    page = await sdk.locations.list(limit=1, order="asc")
    assert [loc.id for loc in page.data] == ["local"] and page.next_cursor is None


async def test_usage_counts_a_real_browser_run_and_a_stored_file(sdk, browsers):
    began = time.monotonic()
    made = await running_browser(sdk, browsers)
    running_since = time.monotonic()
    await asyncio.sleep(1.5)
    live = await sdk.usage.get()
    assert live.measured["activeRuns"] == 1 and live.measured["runs"] == 1
    assert live.measured["browserSeconds"] >= 1.4  # a running browser counts up to now
    ran_for = time.monotonic() - running_since
    stopped = await sdk.browsers.stop(made.id, wait=30)
    assert stopped.status == "idle"
    total = time.monotonic() - began

    content = b"usage-bytes-" * 1000
    await sdk.files.upload(file=("report.bin", content), path="reports/report.bin")

    usage = await sdk.usage.get()
    measured = usage.measured
    assert measured["runs"] == 1 and measured["activeRuns"] == 0 and measured["tasks"] == 0
    assert ran_for - 0.05 <= measured["browserSeconds"] <= total + 0.05, (measured, ran_for, total)
    assert measured["storage"]["filesBytes"] == len(content)
    assert measured["storage"]["totalBytes"] == len(content) + measured["storage"]["artifactsBytes"]
    assert measured["llmTokens"] == {"input": 0, "output": 0, "total": 0}
    minutes = measured["browserSeconds"] / 60
    assert usage.credits.monthly_used == pytest.approx(minutes * 1.0, abs=1e-3)  # the default price: 1 cent
    assert usage.credits.breakdown.browser_credits == usage.credits.monthly_used
    # Measured once stopped: the figure stays put.
    await asyncio.sleep(0.3)
    assert (await sdk.usage.get()).measured["browserSeconds"] == measured["browserSeconds"]
    # The account cap sees the same usage in cents.
    assert (await sdk.account.spending_cap.get()).usage.amount == pytest.approx(minutes, abs=1e-3)


async def test_a_cap_of_zero_refuses_new_browsers_and_leaves_the_running_one(sdk, browsers):
    first = await running_browser(sdk, browsers)
    cap = await sdk.account.spending_cap.update(currency="USD", amount=0)
    assert cap.status == "reached"
    before = len((await sdk.browsers.list()).data)

    with pytest.raises(PaymentRequiredError) as refused:
        await sdk.browsers.create(wait=10, recording=False)
    error = error_of(refused)
    assert error["code"] == "spending_cap.reached" and error["reasonClass"] == "capability_limit_exceeded"
    assert error["details"]["scope"] == "organization" and error["details"]["amount"] == 0
    assert len((await sdk.browsers.list()).data) == before  # nothing half-created
    # The flat generation's create-and-start is refused the same way, keeping nothing either.
    listed = len((await sdk.browsers.list()).data)
    flat = await sdk.http.post(
        "/v1/runtimes", json={"start": True}, headers={"Authorization": sdk.raw_headers["Authorization"]}
    )
    assert flat.status_code == 402 and flat.json()["code"] == "spending_cap.reached", flat.text
    assert len((await sdk.browsers.list()).data) == listed

    assert (await sdk.browsers.get(first.id)).status == "running"
    assert await answers_cdp(sdk, first.id)
    usage = await sdk.usage.get()
    assert usage.is_blocked is True and usage.blocked_reasons == ["spendingCapReached"]

    # Disabled again: starts are allowed.
    await sdk.account.spending_cap.update(currency="USD", amount=None)
    again = await running_browser(sdk, browsers)
    assert again.status == "running" and not (await sdk.usage.get()).is_blocked


async def test_a_space_cap_refuses_only_its_space_and_the_account_cap_every_space(sdk, browsers):
    capped = await sdk.spaces.create(name="capped-space")
    free = await sdk.spaces.create(name="free-space")
    await sdk.spaces.spending_cap.update(capped.id, currency="USD", amount=0)

    with pytest.raises(PaymentRequiredError) as refused:
        await sdk.browsers.create(space_id=capped.id, wait=10, recording=False)
    assert error_of(refused)["details"]["scope"] == "space"
    assert error_of(refused)["details"]["spaceId"] == capped.id
    elsewhere = await running_browser(sdk, browsers, space_id=free.id)
    assert elsewhere.space_id == free.id
    assert (await sdk.usage.get()).is_blocked is False  # a space cap blocks the space only

    # The account's cap applies in a space whose own cap is generous.
    await sdk.spaces.spending_cap.update(free.id, currency="USD", amount=100_000)
    await sdk.account.spending_cap.update(currency="USD", amount=0)
    with pytest.raises(PaymentRequiredError) as refused:
        await sdk.browsers.create(space_id=free.id, wait=10, recording=False)
    assert error_of(refused)["details"]["scope"] == "organization"
    assert (await sdk.browsers.get(elsewhere.id)).status == "running"


async def test_a_monthly_credit_limit_of_zero_refuses_new_browsers(server, sdk):
    async with server.ctx.db.transaction() as s:
        account = await s.get(Account, uuid.UUID(sdk.account_id))
        account.limits = {"monthlyCreditLimit": 0}
    before = len((await sdk.browsers.list()).data)
    with pytest.raises(PaymentRequiredError) as refused:
        await sdk.browsers.create(wait=10, recording=False)
    assert error_of(refused)["code"] == "billing.insufficient_credits"
    assert len((await sdk.browsers.list()).data) == before
    usage = await sdk.usage.get()
    assert usage.is_blocked and usage.blocked_reasons == ["insufficientCredits"]
    assert usage.credits.monthly_limit == 0


async def test_bad_input_is_a_400_envelope_and_changes_nothing(sdk):
    await sdk.account.spending_cap.update(currency="USD", amount=700)
    bad = [
        {"currency": "USD", "amount": -1},
        {"currency": "USD", "amount": "500"},
        {"currency": "USD", "amount": 1.5},
        {"currency": "EUR", "amount": 500},
        {"amount": 500},
        {"currency": "USD", "warnAtPercent": 0},
        {"currency": "USD", "warnAtPercent": 100.5},
        {"currency": "USD", "warnAtPercent": "80"},
        {"currency": "USD", "amount": 500, "period": "week"},
    ]
    for body in bad:
        got = await sdk.http.patch("/v1/account/spending-cap", json=body, headers=sdk.raw_headers)
        assert got.status_code == 400, (body, got.text)
        error = got.json()["error"]
        assert error["code"] == "request.invalid" and error["reasonClass"] == "invalid_input", body
        assert error["requestId"]
    with pytest.raises(BadRequestError):
        await sdk.account.spending_cap.update(currency="USD", amount=-5)
    space = await sdk.spaces.create(name="bad-input")
    with pytest.raises(BadRequestError):
        await sdk.spaces.spending_cap.update(
            space.id, currency="USD", request_options={"additional_body_parameters": {"warnAtPercent": 150}}
        )
    cap = await sdk.account.spending_cap.get()
    assert cap.amount == 700 and cap.warn_at_percent == 80
    assert (await sdk.spaces.spending_cap.get(space.id)).status == "disabled"

    with pytest.raises(NotFoundError):
        await sdk.spaces.spending_cap.get("0190c6a1-0000-7000-8000-000000000000")
    with pytest.raises(NotFoundError):
        await sdk.spaces.spending_cap.update("not-a-space", currency="USD", amount=1)


async def test_another_accounts_space_cap_is_not_found(server, sdk):
    space = await sdk.spaces.create(name="mine")
    async with sdk_of(server) as other:
        with pytest.raises(NotFoundError):
            await other.spaces.spending_cap.get(space.id)
        with pytest.raises(NotFoundError):
            await other.spaces.spending_cap.update(space.id, currency="USD", amount=0)
    assert (await sdk.spaces.spending_cap.get(space.id)).status == "disabled"

"""GET /metrics in process: the exposition parses, requests are counted by route template, the token."""

from __future__ import annotations

import uuid

from app.core.metrics_middleware import UNMATCHED
from tests.metrics.support import samples, value

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def scrape(client) -> dict:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_requests_are_counted_by_route_template_and_status(server, api):
    before = await scrape(api)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for browser_id in ids:
        assert (await api.get(f"/v1/browsers/{browser_id}", headers=CURRENT)).status_code == 404
    assert (await api.get("/v1/spaces")).status_code == 200
    assert (await api.get(f"/no/such/{ids[0]}")).status_code == 404
    after = await scrape(api)

    def moved(**labels) -> float:
        return value(after, "bctrl_http_requests_total", **labels) - value(
            before, "bctrl_http_requests_total", **labels
        )

    assert moved(method="GET", route="/v1/browsers/{browser_id}", status="404") == 3
    assert moved(method="GET", route="/v1/spaces", status="200") == 1
    assert moved(method="GET", route=UNMATCHED, status="404") == 1
    # Never the raw path: the ids asked for appear in no label of any series.
    assert not [labels for (_name, labels) in after if any(i in v for i in ids for _k, v in labels)]
    durations = value(after, "bctrl_http_request_seconds_count", method="GET", route="/v1/spaces") - value(
        before, "bctrl_http_request_seconds_count", method="GET", route="/v1/spaces"
    )
    assert durations == 1


async def test_the_deployment_gauges_and_process_collectors_are_there(server, api):
    scraped = await scrape(api)
    driver = server.ctx.driver.name
    for status in ("starting", "active", "stopping"):
        assert ("bctrl_browsers", frozenset({"driver": driver, "status": status}.items())) in scraped
    assert ("bctrl_leases_active", frozenset({"scope": "lease"}.items())) in scraped
    assert ("bctrl_events_queued", frozenset()) in scraped
    # The standard process collector (memory, CPU, open files) comes with the registry.
    assert value(scraped, "process_resident_memory_bytes") > 0


async def test_an_openmetrics_scraper_gets_openmetrics(server, api):
    answer = await api.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


async def test_a_metrics_token_closes_the_endpoint(make_server):
    token = f"scrape-{uuid.uuid4().hex}"
    async with make_server("sqlite", metrics_token=token) as srv:
        async with srv.anonymous() as anonymous:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
                refused = await anonymous.get("/metrics", headers=headers)
                assert refused.status_code == 401, refused.text
                assert refused.json()["code"] == "auth.required"
                assert token not in refused.text
            allowed = await anonymous.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert allowed.status_code == 200
            assert "bctrl_http_requests_total" in allowed.text
            # Health probes stay open: load balancers send no token.
            assert (await anonymous.get("/healthz")).status_code == 200

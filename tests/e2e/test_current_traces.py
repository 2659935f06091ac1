"""Traces through the official 0.3 client, unchanged, against a server process: a browser's run driven
with Playwright over its CDP URL reads back as spans (the run, its commands, the CDP session), as a
page of trace spans and as OpenTelemetry spans by the run's traceId."""

from __future__ import annotations

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique


def drive(cdp_url: str, url: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url)
        page.click("#go")
        browser.close()


def every_span(client, run_id: str, **filters) -> list:
    found, cursor = [], None
    while True:
        page = client.runs.trace.list(run_id, limit=2, cursor=cursor, **filters)
        found += page.data
        if not page.has_more:
            return found
        cursor = page.next_cursor


def test_a_driven_run_reads_back_as_a_trace(client, browsers, pages):
    created = client.browsers.create(name=unique("traced"), wait=30, recording=False)
    browsers(created.id)
    run = created.current_run
    drive(run.connections.cdp_url, f"{pages.url}/index.html")
    client.browsers.stop(created.id, wait=30)

    spans = every_span(client, run.id, order="asc")
    assert [s.started_at for s in spans] == sorted(s.started_at for s in spans)
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.id == run.id and root.kind == "runtime" and root.status == "succeeded"
    assert root.duration_ms > 0 and root.finished_at is not None and root.resource_type == "run"
    sessions = [s for s in spans if s.kind == "browser"]
    assert len(sessions) >= 1, spans
    for session in sessions:
        assert session.name == "cdp.session" and session.parent_id == run.id and session.status == "succeeded"
        assert session.resource_type == "connection" and session.resource_id
        assert session.finished_at >= session.started_at and session.data["bctrl.connection.ended_by"]
    commands = {s.name for s in spans if s.kind == "system"}
    assert {"runtime.start", "runtime.stop", "connection.create"} <= commands, commands
    assert all(s.run_id == run.id and s.object == "trace_span" for s in spans)

    only = every_span(client, run.id, kind="browser")
    assert {s.id for s in only} == {s.id for s in sessions}
    mixed = every_span(client, run.id, kind=["browser", "runtime"])
    assert {s.id for s in mixed} == {s.id for s in sessions} | {root.id}
    assert {s.id for s in every_span(client, run.id, parent_id=run.id)} == {s.id for s in spans} - {root.id}
    assert every_span(client, run.id, status="failed") == []

    # The same trace as OpenTelemetry spans, by the run's traceId.
    ended = client.runs.get(run.id)
    trace = client.traces.get(ended.trace_id)
    assert trace.object == "trace" and trace.trace_id == ended.trace_id and trace.semconv.gen_ai
    assert len(trace.spans) == len(spans) and trace.spans[0].parent_span_id is None
    seen = set()
    for span in trace.spans:
        assert span.parent_span_id is None or span.parent_span_id in seen
        assert span.end_time >= span.start_time
        seen.add(span.span_id)
    otel_sessions = [s for s in trace.spans if s.name == "cdp.session"]
    assert len(otel_sessions) == len(sessions)
    assert all(s.kind == "server" and s.status == "ok" and len(s.event_ids) == 2 for s in otel_sessions)

    # It stays readable after the browser is deleted.
    client.browsers.delete(created.id)
    assert client.traces.get(ended.trace_id).trace_id == ended.trace_id


def test_unknown_traces_and_bad_filters(client, browsers):
    with pytest.raises(NotFoundError) as unknown:
        client.traces.get("0" * 32)
    assert code_of(unknown) == "trace.not_found"
    with pytest.raises(NotFoundError):
        client.runs.trace.list("no-such-run")
    created = client.browsers.create(name=unique("filters"), wait=30, recording=False)
    browsers(created.id)
    # The client maps no 400 for this operation: it raises its generic error with the status and envelope.
    with pytest.raises(ApiError) as bad:
        client.runs.trace.list(created.current_run.id, kind="nothing")
    assert bad.value.status_code == 400 and bad.value.body["error"]["code"] == "request.invalid"

"""Events through the official 0.3 client, unchanged, against a real server process: a run's stream as
typed frames (`client.runs.stream`), pages Playwright opens showing up as they happen, the account's
events listed, read by id and streamed (`client.events`), and resuming after an event."""

from __future__ import annotations

import queue
import threading

import pytest
from bctrl._generated.errors import NotFoundError
from bctrl._generated.types import (
    RunStreamEvent_ControlChanged,
    RunStreamEvent_RunEnded,
    RunStreamEvent_RuntimeEvent,
    RunStreamEvent_SpanCompleted,
    RunStreamEvent_SpanStarted,
)
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique


def _pump(iterator, out: queue.Queue) -> threading.Thread:
    """Read a stream on a thread (the SDK's iterators block); every item goes to `out`, then a None."""

    def run() -> None:
        try:
            for item in iterator:
                out.put(item)
        except Exception as exc:  # a closed stream ends the thread
            out.put(exc)
        out.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(out: queue.Queue, done, timeout: float = 30.0) -> list:
    """Items from `out` until `done(items)` holds (or the stream ends), within `timeout` seconds."""
    items: list = []
    while not done(items):
        item = out.get(timeout=timeout)
        if item is None:
            break
        assert not isinstance(item, Exception), item
        items.append(item)
    return items


def _visit(cdp_url: str, url: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        page = browser.contexts[0].new_page()
        page.goto(url)
        page.close()
        browser.close()


def _types(items) -> list[str]:
    return [i.event.type for i in items if isinstance(i, RunStreamEvent_RuntimeEvent)]


def test_run_stream_yields_typed_frames_live_and_after_the_end(client, browsers, pages):
    created = client.browsers.create(name=unique("stream"), wait=30)
    browsers(created.id)
    run = created.current_run
    url = f"{pages.url}/index.html"
    frames: queue.Queue = queue.Queue()
    with client.runs.with_raw_response.stream(run.id) as response:
        _pump(response.data, frames)
        # The page Playwright opens shows up while the run goes on.
        _visit(run.connections.cdp_url, url)
        live = _until(frames, lambda items: "page.load" in _types(items))
        loaded = next(i for i in live if isinstance(i, RunStreamEvent_RuntimeEvent) and i.event.type == "page.load")
        assert loaded.run_id == run.id and loaded.event.run_id == run.id and loaded.id == loaded.event.id
        assert loaded.event.data["url"] == url and loaded.event.category == "page" and loaded.event.source == "browser"
        assert loaded.event.object == "event" and loaded.event.runtime_id == created.id
        assert _types(live)[0] == "runtime.starting"  # from the run's first event
        seqs = [i.event.seq for i in live if isinstance(i, RunStreamEvent_RuntimeEvent)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # Stopping the browser: its controller lets go, then the stream ends with run.ended.
        client.browsers.stop(created.id, wait=30)
        rest = _until(frames, lambda items: any(isinstance(i, RunStreamEvent_RunEnded) for i in items))
    control = [i for i in rest if isinstance(i, RunStreamEvent_ControlChanged)]
    assert control and control[-1].holder == "none" and control[-1].runtime_id == created.id
    ended = rest[-1]
    assert isinstance(ended, RunStreamEvent_RunEnded) and ended.status == "ended" and ended.run_id == run.id
    assert "runtime.stopped" in _types(rest)

    # A finished run: every frame typed (none skipped by the SDK), from the first event to run.ended.
    replay = list(client.runs.stream(run.id))
    everything = _types(replay)
    typed = (
        RunStreamEvent_RuntimeEvent,
        RunStreamEvent_RunEnded,
        RunStreamEvent_ControlChanged,
        RunStreamEvent_SpanStarted,
        RunStreamEvent_SpanCompleted,
    )
    assert all(isinstance(i, typed) for i in replay)
    # Its trace, as span frames: the run's own span started and completed, and the CDP lease's command.
    started = [i.span for i in replay if isinstance(i, RunStreamEvent_SpanStarted)]
    completed = {i.span.id: i.span for i in replay if isinstance(i, RunStreamEvent_SpanCompleted)}
    root = next(span for span in started if span.parent_id is None)
    assert root.run_id == run.id and completed[root.id].finished_at is not None
    assert set(completed) <= {span.id for span in started} and len(started) > 1
    only_events = list(client.runs.stream(run.id, include="events"))
    assert not any(isinstance(i, RunStreamEvent_SpanStarted | RunStreamEvent_SpanCompleted) for i in only_events)
    assert _types(only_events) == everything
    assert isinstance(replay[-1], RunStreamEvent_RunEnded) and everything[0] == "runtime.starting"
    assert "page.created" in everything and "page.load" in everything and "runtime.stopped" in everything
    # Every event of the run came as a frame (the SDK skips none), each once.
    listed = client.events.list(run=run.id, order="asc", limit=200)
    replayed = [i.event.id for i in replay if isinstance(i, RunStreamEvent_RuntimeEvent)]
    assert len(listed.data) < 200 and [e.id for e in listed.data] != []
    assert sorted(replayed) == sorted(e.id for e in listed.data) and len(set(replayed)) == len(replayed)

    # Resumed after the page load: what followed it, and nothing before it.
    resumed = list(client.runs.stream(run.id, after=loaded.id))
    after = [i.event.seq for i in resumed if isinstance(i, RunStreamEvent_RuntimeEvent)]
    assert after and min(after) == loaded.event.seq + 1 and isinstance(resumed[-1], RunStreamEvent_RunEnded)


def test_events_list_get_and_stream_through_the_sdk(client, browsers, pages):
    name = unique("events")
    seen: queue.Queue = queue.Queue()
    with client.events.with_raw_response.stream(category="page") as response:
        _pump(response.data, seen)
        created = client.browsers.create(name=name, wait=30)
        browsers(created.id)
        run = created.current_run
        url = f"{pages.url}/index.html"
        _visit(run.connections.cdp_url, url)
        streamed = _until(seen, lambda items: any(e.type == "page.load" and e.run_id == run.id for e in items))
    load = next(e for e in streamed if e.type == "page.load" and e.run_id == run.id)
    assert load.object == "event" and load.category == "page" and load.channel == "cdp" and load.outcome == "ok"
    assert load.runtime_id == created.id and load.data["url"] == url and load.actor.type == "platform"
    assert {e.category for e in streamed} == {"page"}

    # Listed by browser name, and read by id: the same event.
    by_browser = client.events.list(browser=name, type="page.load")
    assert [e.id for e in by_browser.data] == [load.id] and by_browser.has_more is False
    assert client.events.get(load.id).model_dump() == load.model_dump()
    page = client.events.list(run=run.id, limit=1)
    assert len(page.data) == 1 and page.has_more is True and page.next_cursor
    second = client.events.list(run=run.id, limit=1, cursor=page.next_cursor)
    assert second.data[0].id != page.data[0].id
    assert client.events.list(sandbox="sbx_1").data == [] and client.events.list(agent="agt_1").data == []
    with pytest.raises(NotFoundError) as missing:
        client.events.get("01a2496a-0000-7000-8000-000000000000")
    assert code_of(missing) == "event.not_found"

    # Resumed after an event of the run: that run's later events, from the very next one.
    first = client.events.list(run=run.id, order="asc", limit=1).data[0]
    again: queue.Queue = queue.Queue()
    with client.events.with_raw_response.stream(browser=created.id, after=first.id) as response:
        _pump(response.data, again)
        resumed = _until(again, lambda items: any(e.type == "page.load" for e in items))
    seqs = [e.seq for e in resumed if e.run_id == run.id]
    assert seqs[0] == first.seq + 1 and seqs == sorted(seqs)

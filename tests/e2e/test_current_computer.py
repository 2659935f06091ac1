"""Computer use through the official 0.3 client, unchanged (`from bctrl import Bctrl`), against a real
server process and real Chromium, with a page served on 127.0.0.1 (tests/e2e/pages/computer.html): the
actions an agent with a vision model takes land where its screenshot shows things, and what they did is
read back from the page itself (over the browser's cdpUrl with Playwright, which the API then waits for)."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from bctrl._generated.errors import BadRequestError, ConflictError
from bctrl._generated.types import (
    ComputerActionRequest_Click,
    ComputerActionRequest_Cursor,
    ComputerActionRequest_Key,
    ComputerActionRequest_Screenshot,
    ComputerActionRequest_Type,
)
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, error_of, unique
from tests.support import jpeg_size

VERSION = {"BCTRL-Version": "2026-10-03"}


def on_page(browser, work):
    """Run `work(page)` on the browser's page over its cdpUrl with Playwright, then let go."""
    with sync_playwright() as pw:
        connected = pw.chromium.connect_over_cdp(browser.current_run.connections.cdp_url)
        try:
            context = connected.contexts[0]
            page = context.pages[0] if context.pages else context.new_page()
            return work(page)
        finally:
            connected.close()


def fresh(browser, pages) -> dict:
    """Load the test page afresh; the boxes (CSS pixels of the viewport) of what the tests aim at."""

    def load(page):
        page.goto(f"{pages.url}/computer.html")
        return page.evaluate(
            """() => {
              const box = (r) => ({x: r.left + r.width / 2, y: r.top + r.height / 2});
              const words = document.getElementById('words').firstChild;
              const range = document.createRange();
              range.setStart(words, 6); range.setEnd(words, 11);
              return {
                go: box(document.getElementById('go').getBoundingClientRect()),
                ask: box(document.getElementById('ask').getBoundingClientRect()),
                field: box(document.getElementById('field').getBoundingClientRect()),
                paste: box(document.getElementById('paste').getBoundingClientRect()),
                bravo: box(range.getBoundingClientRect()),
                pad: box(document.getElementById('pad').getBoundingClientRect()),
                width: innerWidth, height: innerHeight,
              };
            }"""
        )

    return on_page(browser, load)


def read(browser, expression: str):
    return on_page(browser, lambda page: page.evaluate(expression))


def settled(call, timeout: float = 10.0):
    """The API call once the Playwright client that just let go is detached (409 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ConflictError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_click_where_the_screenshot_shows_the_button_presses_it(sdk, running, pages):
    boxes = fresh(running, pages)
    computer = sdk.browsers.computer
    shot = settled(lambda: computer.screenshot(running.id))
    assert shot.status == "succeeded" and shot.object == "computer.result" and shot.data.action == "screenshot"
    # The picture is the viewport at CSS pixel scale: its pixels are the coordinates actions take.
    assert (shot.data.width, shot.data.height) == (boxes["width"], boxes["height"])
    assert shot.data.image.mime_type == "image/jpeg"
    assert jpeg_size(base64.b64decode(shot.data.image.data)) == (boxes["width"], boxes["height"])

    clicked = computer.click(running.id, coordinate=[boxes["go"]["x"], boxes["go"]["y"]])
    assert clicked.status == "succeeded" and clicked.data.action == "left_click"
    assert clicked.data.coordinate == [boxes["go"]["x"], boxes["go"]["y"]]
    assert read(running, "document.getElementById('go').textContent") == "pressed 1"
    # The pointer stays where the click left it: a click without coordinates presses the button again.
    cursor = settled(lambda: computer.cursor(running.id))
    assert cursor.data.action == "cursor_position" and cursor.data.coordinate == clicked.data.coordinate
    computer.click(running.id)
    assert read(running, "document.getElementById('go').textContent") == "pressed 2"

    # Every action is an event of the run on the computer channel; the result's eventId is its id.
    events = sdk.events.list(run=running.current_run.id, channel="computer", limit=100).data
    by_id = {e.id: e for e in events}
    assert shot.event_id in by_id and clicked.event_id in by_id and cursor.event_id in by_id
    assert by_id[clicked.event_id].type == "computer.click" and by_id[clicked.event_id].channel == "computer"
    assert by_id[shot.event_id].type == "computer.screenshot"


def test_a_batch_types_into_a_field_and_enter_submits(sdk, running, pages):
    boxes = fresh(running, pages)
    result = settled(
        lambda: sdk.browsers.computer.batch(
            running.id,
            actions=[
                ComputerActionRequest_Click(coordinate=[boxes["field"]["x"], boxes["field"]["y"]]),
                ComputerActionRequest_Type(text="hello world"),
                ComputerActionRequest_Key(keys="Enter"),
                ComputerActionRequest_Cursor(),
                ComputerActionRequest_Screenshot(),
            ],
        )
    )
    assert result.status == "succeeded"
    assert [r.action for r in result.data.results] == ["left_click", "type", "key", "cursor_position", "screenshot"]
    assert result.data.results[4].image is not None
    assert read(running, "document.getElementById('status').textContent") == "submitted hello world"
    batch_events = sdk.events.list(run=running.current_run.id, channel="computer", type="computer.batch").data
    assert result.event_id in {e.id for e in batch_events}
    # Each action is a span of the run's trace, the batch's actions under the batch's span.
    spans = sdk.runs.trace.list(running.current_run.id, limit=200).data
    (batch_span,) = [s for s in spans if s.id == result.event_id]
    assert batch_span.kind == "tool" and batch_span.status == "succeeded"
    children = sorted((s for s in spans if s.parent_id == batch_span.id), key=lambda s: s.started_at)
    assert [s.name for s in children] == [
        f"execute_tool computer.{a}" for a in ("click", "type", "key", "cursor", "screenshot")
    ]


def test_double_click_selects_a_word_and_ctrl_c_copies_it(sdk, running, pages):
    boxes = fresh(running, pages)
    computer = sdk.browsers.computer
    done = settled(lambda: computer.double_click(running.id, coordinate=[boxes["bravo"]["x"], boxes["bravo"]["y"]]))
    assert done.data.action == "double_click"
    assert read(running, "String(window.getSelection())").strip() == "bravo"
    settled(lambda: computer.double_click(running.id, coordinate=[boxes["bravo"]["x"], boxes["bravo"]["y"]]))
    computer.key(running.id, keys="ctrl+c")
    assert computer.clipboard.read(running.id).data.text.strip() == "bravo"

    # ctrl+x takes a field's selection into the clipboard and out of the field.
    computer.click(running.id, coordinate=[boxes["paste"]["x"], boxes["paste"]["y"]])
    computer.type(running.id, text="keep cutme")
    computer.key(running.id, keys="shift+ArrowLeft", repeat=5)
    computer.key(running.id, keys="ctrl+x")
    assert computer.clipboard.read(running.id).data.text == "cutme"
    assert read(running, "document.getElementById('paste').value") == "keep "


def test_drag_presses_moves_along_the_path_and_releases(sdk, running, pages):
    boxes = fresh(running, pages)
    x, y = boxes["pad"]["x"], boxes["pad"]["y"]
    done = settled(
        lambda: sdk.browsers.computer.drag(
            running.id, start_coordinate=[x - 200, y], path=[[x - 100, y + 10], [x, y + 20]], coordinate=[x + 100, y]
        )
    )
    assert done.data.action == "left_click_drag" and done.data.coordinate == [x + 100, y]
    drag = read(running, "window.drag")
    assert drag[0] == ["down", x - 200, y] and drag[-1] == ["up", x + 100, y]
    assert ["move", x - 100, y + 10] in drag and ["move", x, y + 20] in drag
    # A wait holds the browser for its duration and says so.
    t0 = time.monotonic()
    waited = settled(lambda: sdk.browsers.computer.wait(running.id, duration=0.5))
    assert waited.data.action == "wait" and time.monotonic() - t0 >= 0.5


def test_a_dialog_the_action_opens_is_closed_and_recorded(sdk, running, pages):
    boxes = fresh(running, pages)
    computer = sdk.browsers.computer
    t0 = time.monotonic()
    clicked = settled(lambda: computer.click(running.id, coordinate=[boxes["ask"]["x"], boxes["ask"]["y"]]))
    assert clicked.status == "succeeded" and time.monotonic() - t0 < 10
    # A confirm is dismissed (a screenshot cannot show it, an agent could not answer it); the event says so.
    assert read(running, "document.getElementById('status').textContent") == "declined"
    (event,) = [
        e for e in sdk.events.list(run=running.current_run.id, channel="computer").data if e.id == clicked.event_id
    ]
    assert event.data["dialogs"] == [{"type": "confirm", "message": "Leave this page?", "accepted": False}]
    # The page takes input again at once.
    settled(lambda: computer.click(running.id, coordinate=[boxes["go"]["x"], boxes["go"]["y"]]))
    assert read(running, "document.getElementById('go').textContent") == "pressed 1"


def test_an_idempotency_key_replays_a_click_without_clicking_again(sdk, running, pages):
    boxes = fresh(running, pages)
    point = [boxes["go"]["x"], boxes["go"]["y"]]
    key = unique("click")
    first = settled(lambda: sdk.browsers.computer.click(running.id, coordinate=point, idempotency_key=key))
    again = sdk.browsers.computer.click(running.id, coordinate=point, idempotency_key=key)
    assert again.event_id == first.event_id
    assert read(running, "document.getElementById('go').textContent") == "pressed 1"


def test_scroll_moves_the_page(sdk, running, pages):
    boxes = fresh(running, pages)
    assert read(running, "scrollY") == 0
    done = settled(lambda: sdk.browsers.computer.scroll(running.id, direction="down", amount=3, coordinate=[640, 360]))
    assert done.data.action == "scroll"
    deadline = time.monotonic() + 5
    while (y := read(running, "scrollY")) < 300 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert y == 300, boxes


def test_clipboard_write_then_ctrl_v_pastes_into_a_field(sdk, running, pages):
    boxes = fresh(running, pages)
    computer = sdk.browsers.computer
    written = settled(lambda: computer.clipboard.write(running.id, text="pasted ✓ text"))
    assert written.status == "succeeded" and written.data.written is True and written.data.run_id
    assert computer.clipboard.read(running.id).data.text == "pasted ✓ text"
    computer.click(running.id, coordinate=[boxes["paste"]["x"], boxes["paste"]["y"]])
    computer.key(running.id, keys="ctrl+v")
    assert read(running, "document.getElementById('paste').value") == "pasted ✓ text"
    # The text itself is never recorded; its length is.
    events = sdk.events.list(run=running.current_run.id, type="computer.clipboard_write").data
    assert events and all("pasted" not in str(e.data) for e in events)

    with pytest.raises(BadRequestError) as large:
        settled(lambda: computer.clipboard.write(running.id, text="x" * (256 * 1024 + 1)))
    assert code_of(large) == "request.invalid" and "text" in error_of(large)["message"]
    assert computer.clipboard.read(running.id).data.text == "pasted ✓ text"


def test_bad_input_is_refused_and_a_failing_batch_says_where(live, sdk, running, pages):
    boxes = fresh(running, pages)
    computer = sdk.browsers.computer
    with pytest.raises(BadRequestError) as outside:
        settled(lambda: computer.click(running.id, coordinate=[1280, 10]))
    assert code_of(outside) == "request.invalid"
    assert [f["field"] for f in error_of(outside)["details"]["fields"]] == ["coordinate"]
    assert "outside the viewport" in error_of(outside)["message"]
    with pytest.raises(BadRequestError) as empty:
        computer.batch(running.id, actions=[])
    assert code_of(empty) == "request.invalid" and "actions" in error_of(empty)["message"]
    with pytest.raises(BadRequestError) as many:
        computer.batch(running.id, actions=[ComputerActionRequest_Cursor()] * 21)
    assert code_of(many) == "request.invalid"
    with pytest.raises(BadRequestError) as key:
        computer.key(running.id, keys="ctrl+nosuchkey")
    assert error_of(key)["details"]["fields"][0]["field"] == "keys"
    # A lone surrogate is valid as a JSON escape but is not text (the SDK cannot even send it).
    lone = httpx.post(
        f"{live.url}/v1/browsers/{running.id}/computer/type",
        content=b'{"text": "a\\ud800b"}',
        headers={
            "Authorization": f"Bearer {live.api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": "x",
            **VERSION,
        },
    )
    assert lone.status_code == 400 and lone.json()["error"]["details"]["fields"][0]["field"] == "text"

    # Action 2 is refused when it comes to run: the two before it took effect, and the error says so.
    with pytest.raises(BadRequestError) as stopped:
        computer.batch(
            running.id,
            actions=[
                ComputerActionRequest_Click(coordinate=[boxes["field"]["x"], boxes["field"]["y"]]),
                ComputerActionRequest_Type(text="ab"),
                ComputerActionRequest_Click(coordinate=[10, 5000]),
                ComputerActionRequest_Type(text="never"),
            ],
        )
    error = error_of(stopped)
    assert error["details"]["index"] == 2 and error["details"]["completed"] == 2
    assert error["details"]["fields"][0]["field"] == "actions.2.coordinate"
    assert read(running, "document.getElementById('field').value") == "ab"


def test_actions_are_refused_while_a_cdp_client_holds_the_browser(sdk, running, pages):
    fresh(running, pages)

    def try_click(page):
        with pytest.raises(ConflictError) as held:
            sdk.browsers.computer.click(running.id, coordinate=[5, 5])
        page.evaluate("1")  # still connected
        return error_of(held)

    error = on_page(running, try_click)
    assert error["code"] == "browser.control_held" and "CDP client" in error["message"]
    # Once it lets go, actions go through again.
    assert settled(lambda: sdk.browsers.computer.move(running.id, coordinate=[5, 5])).data.action == "mouse_move"


def test_a_browser_that_is_not_running_is_refused(sdk):
    made = sdk.browsers.create(name=unique("computer-idle"), wait=30)
    try:
        sdk.browsers.stop(made.id, wait=30)
        with pytest.raises(ConflictError) as idle:
            sdk.browsers.computer.screenshot(made.id)
        assert code_of(idle) == "browser.not_running"
        with pytest.raises(ConflictError) as idle:
            sdk.browsers.computer.clipboard.read(made.id)
        assert code_of(idle) == "browser.not_running"
    finally:
        sdk.browsers.delete(made.id)

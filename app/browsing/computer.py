"""Computer use in a running browser: the pointer, the keyboard, screenshots, batches and the clipboard.

The actions an agent with a vision model takes. They go to the browser's active page (`Held.active_page`)
through CDP input events, and their coordinates are CSS pixels of that page's viewport: a screenshot is
the viewport at CSS pixel scale, so a click at (x, y) of the picture hits what the picture shows there.
A coordinate outside the viewport is refused (400, the field named) before anything is sent.

Each action holds the browser (app/browsing/access.py) and is a run event of category `computer`
(`computer.<action>` such as `computer.double_click`, or `computer.failed` when the browser failed it), whose id is the result's
`eventId`; a batch runs its actions in one hold, so nothing else is interleaved, and is one more event
(`computer.batch`). Typed text and clipboard contents are never recorded, only their length.

The clipboard is the run's own, kept by this server on the run's link (a headless browser has no system
clipboard an API could share): `key` ctrl+v (or cmd+v, shift+Insert) types it into the focused control,
ctrl+c / ctrl+x (cmd+c / cmd+x, ctrl+Insert) fill it from the page's selection before the page gets the
keys, and the clipboard routes read and write it.

A JavaScript dialog (alert, confirm, prompt, beforeunload) blocks the page's input and does not show in
a screenshot, so an agent could neither see nor close it: while an action runs, a dialog open on its page
(opened by the action, or before it) is closed at once, alerts and beforeunload accepted, confirm and
prompt dismissed, as a browser automation library does by default; the action's event lists it
(`dialogs`). Outside actions dialogs are left alone (a CDP client holding the browser handles its own).
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from app.browsing.access import BrowserCallFailed, Held
from app.browsing.links import Link
from app.core.errors import DomainError, InvalidRequest
from app.live.input import SPECIAL_KEYS

CATEGORY = "computer"
# A batch runs at most this many actions (the contract's "up to twenty").
MAX_BATCH = 20
# The clipboard holds at most this much text (UTF-8), as the contract says.
MAX_CLIPBOARD_BYTES = 256 * 1024
# Bounds of one action's inputs (the request models enforce the same).
MAX_TYPE_CHARS = 10_000
MAX_KEYS_CHARS = 64
MAX_REPEAT = 100
MAX_PATH_POINTS = 50
MAX_SCROLL_AMOUNT = 50
MAX_WAIT_SECONDS = 10.0
# One scroll unit (a wheel notch), in CSS pixels.
SCROLL_STEP = 100
JPEG_QUALITY = 80

# Modifier names a chord may use: (key, code, CDP modifier bit); the wire schema's pattern lists them.
_MODIFIERS = {
    "alt": ("Alt", "AltLeft", 1),
    "option": ("Alt", "AltLeft", 1),
    "ctrl": ("Control", "ControlLeft", 2),
    "control": ("Control", "ControlLeft", 2),
    "meta": ("Meta", "MetaLeft", 4),
    "cmd": ("Meta", "MetaLeft", 4),
    "command": ("Meta", "MetaLeft", 4),
    "super": ("Meta", "MetaLeft", 4),
    "win": ("Meta", "MetaLeft", 4),
    "shift": ("Shift", "ShiftLeft", 8),
}
# Key names (any case, xdotool's spellings too) as DOM key values.
_NAMES = {
    **{k.lower(): k for k in SPECIAL_KEYS if len(k) > 1 and k not in ("Shift", "Control", "Alt", "Meta")},
    "return": "Enter",
    "esc": "Escape",
    "del": "Delete",
    "space": " ",
    "spacebar": " ",
    "page_up": "PageUp",
    "page_down": "PageDown",
    "prior": "PageUp",
    "next": "PageDown",
    "left": "ArrowLeft",
    "right": "ArrowRight",
    "up": "ArrowUp",
    "down": "ArrowDown",
}
_CODES = {" ": "Space"}
_TEXT_OF = {"Enter": "\r", " ": " "}

# Read the page's selection (a focused text control's, else the document's) for a copy or cut.
_SELECTION = """(() => {
  const e = document.activeElement;
  if (e && (e.tagName === 'TEXTAREA' || e.tagName === 'INPUT') && typeof e.selectionStart === 'number') {
    return e.value.slice(e.selectionStart, e.selectionEnd);
  }
  return String(window.getSelection() || '');
})()"""


@dataclass(frozen=True)
class Action:
    """One computer-use action, as the route read it (`kind` is the contract's action word)."""

    kind: str  # screenshot, click, doubleClick, move, drag, scroll, type, key, wait, cursor
    coordinate: tuple[float, float] | None = None
    button: str = "left"
    clicks: int = 1
    modifiers: str | None = None
    start: tuple[float, float] | None = None
    path: tuple[tuple[float, float], ...] = ()
    direction: str = "down"
    amount: int = 1
    text: str = ""
    keys: str = ""
    repeat: int = 1
    duration: float = 1.0
    # Where the action sits in its request, for field names in errors ("actions.2." in a batch).
    at: str = ""


@dataclass
class Output:
    """What an action returns: the output's action word, the coordinate it used, the viewport, a picture."""

    action: str
    width: int
    height: int
    coordinate: list[float] | None = None
    image: str | None = None  # base64 JPEG


@dataclass
class Result:
    event_id: str
    output: Output | None  # None when the browser failed the action (status unknown)
    error: dict[str, Any] | None = None


@dataclass
class BatchResult:
    event_id: str
    outputs: list[Output] = field(default_factory=list)
    failed_index: int | None = None
    error: dict[str, Any] | None = None


class ActionRefused(InvalidRequest):
    """An action whose input does not fit the page (a coordinate outside the viewport, ...)."""


class CursorUnknown(ActionRefused):
    """An action that would act at the cursor before the pointer was moved: valid words, but the run's
    state cannot serve it (409, so a client tells it from a malformed body)."""

    status = 409
    code = "computer.cursor_unknown"


def refuse(at: str, name: str, message: str) -> ActionRefused:
    where = f"{at}{name}"
    return ActionRefused(
        f"Invalid request: {where}: {message}",
        details={"fields": [{"field": where, "in": "body", "message": message, "type": "value_error"}]},
    )


# --- parsing chords and modifiers ----------------------------------------------------------------


@dataclass(frozen=True)
class Chord:
    modifiers: tuple[tuple[str, str, int], ...]  # held in order
    key: str  # DOM key value
    code: str
    vk: int

    @property
    def bits(self) -> int:
        return sum({m[2] for m in self.modifiers})


def _key_of(name: str, shifted: bool) -> tuple[str, str, int] | None:
    if name == " ":
        return " ", "Space", 32
    if name.lower() in _NAMES:
        key = _NAMES[name.lower()]
        return key, _CODES.get(key, key), SPECIAL_KEYS.get(key, 0)
    if name.upper() in {f"F{n}" for n in range(1, 13)}:
        key = name.upper()
        return key, key, SPECIAL_KEYS[key]
    if len(name) == 1 and name.isprintable():
        if name.isascii() and name.isalpha():
            key = name.upper() if shifted else name
            return key, f"Key{name.upper()}", ord(name.upper())
        if name.isascii() and name.isdigit():
            return name, f"Digit{name}", ord(name)
        return name, "", 0
    return None


def parse_modifiers(text: str | None, at: str = "", name: str = "modifiers") -> tuple[tuple[str, str, int], ...]:
    if not text:
        return ()
    held: list[tuple[str, str, int]] = []
    for part in text.replace(" ", "").split("+"):
        modifier = _MODIFIERS.get(part.lower())
        if modifier is None:
            raise refuse(at, name, f"unknown modifier {part!r} (use ctrl, shift, alt or meta, joined with +)")
        if modifier not in held:
            held.append(modifier)
    return tuple(held)


def parse_chord(keys: str, at: str = "") -> Chord:
    """`ctrl+shift+t`, `Enter`, `Return`, `a`, `shift+Tab`, `+`: modifiers, then one key."""
    text = keys.strip() or keys
    if text == "+" or text.endswith("++"):  # the plus key itself
        mods, main = text[:-2].split("+") if len(text) > 1 else [], "+"
    else:
        *mods, main = text.split("+")
    mods = [m for m in mods if m]
    modifiers = parse_modifiers("+".join(mods), at, "keys") if mods else ()
    shifted = any(m[0] == "Shift" for m in modifiers)
    name = main if main == " " else main.strip()
    found = _key_of(name, shifted) if name else None
    if found is None:
        raise refuse(
            at, "keys", f"unknown key {main!r} (a key name such as Enter, Tab, ArrowDown, F5, or one character)"
        )
    return Chord(modifiers, *found)


# --- JavaScript dialogs -------------------------------------------------------------------------------


@dataclass
class _Dialogs:
    """What this module watches on one CDP client: sessions with the Page domain on, dialogs open on them,
    the sessions an action runs on now, and the dialogs closed for each."""

    enabled: set[str] = field(default_factory=set)
    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    acting: set[str] = field(default_factory=set)
    closed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


_WATCHED: weakref.WeakKeyDictionary[Link, _Dialogs] = weakref.WeakKeyDictionary()


def _dialog_closed(state: _Dialogs, session: str) -> dict[str, Any] | None:
    """Take the session's open dialog off the books: the CDP parameters to close it, recorded as closed."""
    params = state.open.pop(session, None)
    if params is None:
        return None
    kind = str(params.get("type", "alert"))
    accept = kind in ("alert", "beforeunload")
    state.closed.setdefault(session, []).append(
        {"type": kind, "message": str(params.get("message", ""))[:500], "accepted": accept}
    )
    return {"accept": accept}


def _watch(link: Link) -> _Dialogs:
    """The link's dialog state, its listener registered once."""
    state = _WATCHED.get(link)
    if state is not None:
        return state
    state = _WATCHED[link] = _Dialogs()

    def on_event(method: str, params: dict, session: str | None) -> None:
        if session is not None and method == "Page.javascriptDialogOpening":
            state.open[session] = params
            client = link.client
            if client and session in state.acting and (close := _dialog_closed(state, session)) is not None:
                # The action's input waits for the page, which waits for the dialog: close it now.
                client.send_nowait("Page.handleJavaScriptDialog", close, session)
        elif session is not None and method == "Page.javascriptDialogClosed":
            state.open.pop(session, None)

    link.listeners.append(on_event)
    return state


async def _acting(held: Held, session: str) -> None:
    """An action starts on the session: dialogs are told (Page domain on), one already open is closed."""
    state = _watch(held.link)
    if session not in state.enabled:
        await held.send("Page.enable", None, session)  # a dialog already open is told on enabling
        state.enabled.add(session)
    if (close := _dialog_closed(state, session)) is not None:
        await held.send("Page.handleJavaScriptDialog", close, session)
    state.acting.add(session)


def _done(held: Held, session: str | None) -> list[dict[str, Any]]:
    """The action on the session ended: the dialogs closed meanwhile."""
    state = _watch(held.link)
    if session is None:
        return []
    state.acting.discard(session)
    return state.closed.pop(session, [])


# --- the page, its viewport and the pointer ------------------------------------------------------


@dataclass
class Page:
    held: Held
    session: str
    target_id: str
    width: int
    height: int
    dpr: float
    page_x: float
    page_y: float

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.held.send(method, params, self.session)


async def page_of(held: Held) -> Page:
    target = await held.active_page()
    session = await held.session(target)
    await _acting(held, session)
    try:
        metrics = await held.send("Page.getLayoutMetrics", None, session)
    except BrowserCallFailed:
        _done(held, session)
        raise
    css = metrics["cssVisualViewport"]
    device = metrics.get("visualViewport") or css
    width, height = css["clientWidth"], css["clientHeight"]
    dpr = (device.get("clientWidth") or width) / width if width else 1.0
    return Page(
        held, session, target, int(width), int(height), dpr or 1.0, css.get("pageX", 0.0), css.get("pageY", 0.0)
    )


def _inside(page: Page, point: tuple[float, float], at: str, name: str) -> tuple[float, float]:
    x, y = point
    if not (0 <= x < page.width and 0 <= y < page.height):
        raise refuse(
            at, name, f"({x:g}, {y:g}) is outside the viewport (0 <= x < {page.width}, 0 <= y < {page.height})"
        )
    return x, y


def _pointer(page: Page, action: Action, name: str = "coordinate") -> tuple[float, float]:
    """The action's coordinate (checked), or the cursor when it names none."""
    if action.coordinate is not None and name == "coordinate":
        return _inside(page, action.coordinate, action.at, name)
    cursor = page.held.link.cursor
    if cursor is None:
        where = f"{action.at}{name}"
        message = "required: the pointer has not been moved in this run yet"
        raise CursorUnknown(
            f"{where}: {message}",
            details={"fields": [{"field": where, "in": "body", "message": message, "type": "state"}]},
        )
    return _inside(page, cursor, action.at, name)


def validate(action: Action) -> None:
    """What can be checked without the page (a batch checks every action so before running any): its
    modifier and key words, and a multiple click's button."""
    if action.kind in ("click", "doubleClick", "drag", "scroll"):
        parse_modifiers(action.modifiers, action.at)
    if action.kind == "key":
        parse_chord(action.keys, action.at)
    if action.kind == "click" and action.clicks > 1 and action.button != "left":
        raise refuse(action.at, "clickCount", "two or three clicks need the left button")
    if action.kind == "type":
        _encodable(action.text, action.at, "text")


def _encodable(text: str, at: str, name: str) -> bytes:
    """The text as UTF-8; a lone surrogate (valid in JSON escapes, not in text) is refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse(at, name, "not valid Unicode text (a lone surrogate)") from None


def _checked(page: Page, action: Action) -> None:
    """Every coordinate of the action inside the viewport, before anything is sent."""
    if action.kind in ("click", "doubleClick", "scroll") and action.coordinate is not None:
        _inside(page, action.coordinate, action.at, "coordinate")
    if action.kind in ("move", "drag"):
        _inside(page, action.coordinate, action.at, "coordinate")
    if action.kind == "drag":
        if action.start is not None:
            _inside(page, action.start, action.at, "startCoordinate")
        for i, point in enumerate(action.path):
            _inside(page, point, action.at, f"path.{i}")
    validate(action)


async def _mouse(page: Page, kind: str, point: tuple[float, float], **extra: Any) -> None:
    await page.send("Input.dispatchMouseEvent", {"type": kind, "x": point[0], "y": point[1], **extra})


async def _move_to(page: Page, point: tuple[float, float], bits: int = 0, buttons: int = 0) -> None:
    extra = {"modifiers": bits, "button": "left" if buttons else "none", "buttons": buttons}
    await _mouse(page, "mouseMoved", point, **extra)
    page.held.link.cursor = point


async def _hold_modifiers(page: Page, modifiers: tuple[tuple[str, str, int], ...], down: bool) -> None:
    bits = 0
    order = modifiers if down else tuple(reversed(modifiers))
    if not down:
        bits = sum({m[2] for m in modifiers})
    for key, code, bit in order:
        if down:
            bits |= bit
        else:
            bits &= ~bit
        params = {"type": "rawKeyDown" if down else "keyUp", "key": key, "code": code, "modifiers": bits}
        params["windowsVirtualKeyCode"] = SPECIAL_KEYS[key]
        await page.send("Input.dispatchKeyEvent", params)


def _key_events(key: str, code: str, vk: int, bits: int) -> list[dict[str, Any]]:
    """keyDown (with its text when it types one) and keyUp for one key under the held modifiers."""
    base: dict[str, Any] = {"key": key, "code": code, "modifiers": bits}
    if vk:
        base["windowsVirtualKeyCode"] = vk
    text = _TEXT_OF.get(key, key if len(key) == 1 else "")
    if bits & (1 | 2 | 4):  # with Control/Alt/Meta held a key is a shortcut, not text
        text = ""
    down = {"type": "keyDown" if text else "rawKeyDown", **base}
    if text:
        down.update(text=text, unmodifiedText=text)
    return [down, {"type": "keyUp", **base}]


async def _pipelined(page: Page, events: list[dict[str, Any]]) -> None:
    """Input events sent back to back (the page handles them in order), answered together."""
    await asyncio.gather(*(page.send("Input.dispatchKeyEvent", e) for e in events))


async def _selection(page: Page) -> str:
    found = await page.send("Runtime.evaluate", {"expression": _SELECTION, "returnByValue": True})
    value = (found.get("result") or {}).get("value")
    return value if isinstance(value, str) else ""


# --- the actions ----------------------------------------------------------------------------------


def _click_word(button: str, clicks: int) -> str:
    if clicks == 2:
        return "double_click"
    if clicks == 3:
        return "triple_click"
    return f"{button}_click"


async def _run(page: Page, action: Action) -> tuple[Output, dict[str, Any]]:
    """Do one action on the page; its output and what its event records."""
    link = page.held.link
    out = Output(action="", width=page.width, height=page.height)
    record: dict[str, Any] = {"action": action.kind}
    kind = action.kind
    if kind == "screenshot":
        params: dict[str, Any] = {"format": "jpeg", "quality": JPEG_QUALITY}
        if abs(page.dpr - 1.0) > 1e-3:  # a picture in CSS pixels, whatever the device pixel ratio
            params["clip"] = {
                "x": page.page_x,
                "y": page.page_y,
                "width": page.width,
                "height": page.height,
                "scale": 1 / page.dpr,
            }
        shot = await page.send("Page.captureScreenshot", params)
        out.action, out.image = "screenshot", shot["data"]
        record["bytes"] = len(base64.b64decode(shot["data"]))
    elif kind in ("click", "doubleClick"):
        clicks = 2 if kind == "doubleClick" else action.clicks
        button = "left" if kind == "doubleClick" else action.button
        point = _pointer(page, action)
        mods = parse_modifiers(action.modifiers, action.at)
        bits = sum({m[2] for m in mods})
        await _hold_modifiers(page, mods, True)
        await _move_to(page, point, bits)
        for n in range(1, clicks + 1):
            await _mouse(page, "mousePressed", point, button=button, clickCount=n, modifiers=bits)
            await _mouse(page, "mouseReleased", point, button=button, clickCount=n, modifiers=bits)
        await _hold_modifiers(page, mods, False)
        out.action, out.coordinate = _click_word(button, clicks), list(point)
        record.update(coordinate=list(point), button=button, clickCount=clicks)
    elif kind == "move":
        point = _inside(page, action.coordinate, action.at, "coordinate")
        await _move_to(page, point)
        out.action, out.coordinate = "mouse_move", list(point)
        record["coordinate"] = list(point)
    elif kind == "drag":
        end = _inside(page, action.coordinate, action.at, "coordinate")
        start = (
            _inside(page, action.start, action.at, "startCoordinate")
            if action.start
            else _pointer(page, action, "startCoordinate")
        )
        mods = parse_modifiers(action.modifiers, action.at)
        bits = sum({m[2] for m in mods})
        await _hold_modifiers(page, mods, True)
        await _move_to(page, start, bits)
        await _mouse(page, "mousePressed", start, button="left", buttons=1, clickCount=1, modifiers=bits)
        for point in (*action.path, end):
            await _move_to(page, point, bits, buttons=1)
        await _mouse(page, "mouseReleased", end, button="left", buttons=0, clickCount=1, modifiers=bits)
        await _hold_modifiers(page, mods, False)
        out.action, out.coordinate = "left_click_drag", list(end)
        record.update(start=list(start), coordinate=list(end), pathPoints=len(action.path))
    elif kind == "scroll":
        if action.coordinate is not None:
            point = _inside(page, action.coordinate, action.at, "coordinate")
        else:
            point = link.cursor if link.cursor is not None else (page.width / 2, page.height / 2)
            point = _inside(page, point, action.at, "coordinate")
        mods = parse_modifiers(action.modifiers, action.at)
        bits = sum({m[2] for m in mods})
        delta = action.amount * SCROLL_STEP
        dx = {"left": -delta, "right": delta}.get(action.direction, 0)
        dy = {"up": -delta, "down": delta}.get(action.direction, 0)
        await _move_to(page, point, bits)
        await _mouse(page, "mouseWheel", point, deltaX=dx, deltaY=dy, modifiers=bits)
        out.action, out.coordinate = "scroll", list(point)
        record.update(coordinate=list(point), direction=action.direction, amount=action.amount)
    elif kind == "type":
        events: list[dict[str, Any]] = []
        for ch in action.text:
            if ch == "\n":
                events += _key_events("Enter", "Enter", 13, 0)
            elif ch == "\t":
                events += _key_events("Tab", "Tab", 9, 0)
            elif ch == "\r":
                continue
            else:
                found = _key_of(ch, ch.isupper()) or (ch, "", 0)
                events += _key_events(ch, found[1], found[2], 0)
        await _pipelined(page, events)
        out.action = "type"
        record["length"] = len(action.text)  # never the text
    elif kind == "key":
        chord = parse_chord(action.keys, action.at)
        await _key(page, chord, action.repeat)
        out.action = "key"
        record.update(keys=action.keys, repeat=action.repeat)
    elif kind == "wait":
        await asyncio.sleep(action.duration)
        out.action = "wait"
        record["duration"] = action.duration
    elif kind == "cursor":
        out.action = "cursor_position"
        out.coordinate = list(link.cursor) if link.cursor is not None else None
    else:  # pragma: no cover - the request models admit only the words above
        raise InvalidRequest(f"Unknown action {kind!r}")
    record["pageId"] = page.target_id
    return out, record


def _clipboard_verb(chord: Chord) -> str | None:
    """paste, copy or cut for the chords that mean that on some desktop, else None."""
    mods = {m[0] for m in chord.modifiers}
    key = chord.key.lower()
    if mods in ({"Control"}, {"Meta"}):
        return {"v": "paste", "c": "copy", "x": "cut"}.get(key)
    if chord.key == "Insert":
        return {frozenset({"Shift"}): "paste", frozenset({"Control"}): "copy"}.get(frozenset(mods))
    return None


async def _key(page: Page, chord: Chord, repeat: int) -> None:
    link = page.held.link
    verb = _clipboard_verb(chord)
    for _ in range(repeat):
        if verb == "paste":
            # The run's clipboard typed into the focused control (the page sees the text arrive, as input).
            if link.clipboard:
                await page.send("Input.insertText", {"text": link.clipboard})
            continue
        if verb in ("copy", "cut"):
            selected = await _selection(page)
            if selected:
                link.clipboard = selected
        await _hold_modifiers(page, chord.modifiers, True)
        # The page gets the keys: a cut takes the selection away as the browser's editing does.
        await _pipelined(page, _key_events(chord.key, chord.code, chord.vk, chord.bits))
        await _hold_modifiers(page, chord.modifiers, False)


# --- entry points -----------------------------------------------------------------------------------


def event_type(kind: str) -> str:
    """The run event type of an action (app/runs/trace.py COMPUTER_EVENT_TYPES lists them all)."""
    return "computer.double_click" if kind == "doubleClick" else f"computer.{kind}"


def _failure(exc: DomainError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message}


async def _step(held: Held, action: Action) -> tuple[str | None, Output | None, dict[str, Any], DomainError | None]:
    """Do one action on the active page: (page id, output, what its event records, the browser's failure).
    A refused input is raised before anything is sent."""
    started = time.perf_counter()
    page = await page_of(held)
    failure: DomainError | None = None
    try:
        _checked(page, action)
        out, record = await _run(page, action)
    except BrowserCallFailed as exc:
        out, record, failure = None, {"action": action.kind, "error": _failure(exc)}, exc
    finally:
        dialogs = _done(held, page.session)
    if dialogs:
        record["dialogs"] = dialogs
    record["durationMs"] = _ms(started)
    return page.target_id, out, record, failure


async def act(held: Held, action: Action) -> Result:
    """One action in its own hold. A refused input is raised (nothing was sent); a browser that fails the
    action gives a result without output (status unknown), recorded as `computer.failed`."""
    page_id, out, record, failure = await _step(held, action)
    if failure is not None:
        event_id = await held.event("computer.failed", CATEGORY, record, page_id=page_id)
        return Result(event_id, None, _failure(failure))
    event_id = await held.event(event_type(action.kind), CATEGORY, record, page_id=page_id)
    return Result(event_id, out)


async def batch(held: Held, actions: list[Action]) -> BatchResult:
    """Actions in order in one hold, stopping at the first that is refused or fails.

    Each action's coordinates are checked against the viewport when it runs (the page it meets then): a
    refused one raises 400 naming `actions.<i>.<field>`, with `details.index` and `details.completed`
    (the actions before it took effect); one the browser fails ends the batch with status unknown and its
    index. Each action is its own `computer.*` event; the batch is one more, `computer.batch`."""
    outputs: list[Output] = []
    started = time.perf_counter()
    page_id: str | None = None
    for index, action in enumerate(actions):
        try:
            page_id, out, record, failure = await _step(held, action)
        except ActionRefused as refused:
            summary = {"count": len(actions), "completed": index, "failedIndex": index, "error": _failure(refused)}
            await held.event("computer.batch", CATEGORY, {**summary, "durationMs": _ms(started)}, page_id=page_id)
            done = "no action took effect" if index == 0 else f"actions 0 to {index - 1} took effect"
            refused.message = f"Action {index} ({action.kind}) was refused, {done}: {refused.message}"
            refused.details = {**refused.details, "index": index, "completed": index}
            raise
        except BrowserCallFailed as exc:  # the page could not be read: nothing of this action was sent
            page_id, out, record, failure = page_id, None, {"action": action.kind, "error": _failure(exc)}, exc
        record["batchIndex"] = index
        if failure is not None or out is None:
            await held.event("computer.failed", CATEGORY, record, page_id=page_id)
            summary = {"count": len(actions), "completed": index, "failedIndex": index, "durationMs": _ms(started)}
            event_id = await held.event("computer.batch", CATEGORY, summary, page_id=page_id)
            return BatchResult(event_id, outputs, index, _failure(failure or BrowserCallFailed(action.kind, "failed")))
        await held.event(event_type(action.kind), CATEGORY, record, page_id=page_id)
        outputs.append(out)
        await held.renew()
    summary = {"count": len(actions), "completed": len(actions), "durationMs": _ms(started)}
    event_id = await held.event("computer.batch", CATEGORY, summary, page_id=page_id)
    return BatchResult(event_id, outputs)


async def read_clipboard(held: Held) -> tuple[str, str]:
    """The run's clipboard text and the read's event id."""
    text = held.link.clipboard
    event_id = await held.event("computer.clipboard_read", CATEGORY, {"action": "clipboardRead", "length": len(text)})
    return text, event_id


def check_clipboard(text: str) -> None:
    if len(_encodable(text, "", "text")) > MAX_CLIPBOARD_BYTES:
        raise refuse("", "text", f"at most {MAX_CLIPBOARD_BYTES // 1024} KiB of UTF-8 text")


async def write_clipboard(held: Held, text: str) -> str:
    """Replace the run's clipboard (empty text clears it); the write's event id. Nothing is pasted."""
    check_clipboard(text)
    held.link.clipboard = text
    return await held.event("computer.clipboard_write", CATEGORY, {"action": "clipboardWrite", "length": len(text)})


def _ms(since: float) -> int:
    return max(0, math.floor((time.perf_counter() - since) * 1000))


# --- the words, for the API description ------------------------------------------------------------


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


_MODIFIER = "(?:" + "|".join(_any_case(m) for m in sorted(_MODIFIERS, key=len, reverse=True)) + ")"
_KEY = (
    "(?:"
    + "|".join(_any_case(k) for k in sorted(_NAMES, key=len, reverse=True))
    + "|[Ff](?:1[0-2]|[1-9])|[!-~])"  # a function key, or one printable ASCII character
)
# The words the wire accepts, as patterns (app/current/computer_schemas.py): the parsers above then
# read them; a non-ASCII character is typed with `type`, not pressed as a key.
MODIFIERS_PATTERN = f"^{_MODIFIER}(?:\\+{_MODIFIER})*$"
CHORD_PATTERN = f"^(?:{_MODIFIER}\\+)*{_KEY}$"

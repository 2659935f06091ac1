"""Viewer input to CDP input events. Anything malformed (unknown types, coordinates outside the
picture, keys that are not keys) is dropped: a viewer page cannot make the server do anything else."""

from __future__ import annotations

import math
from typing import Any

from app.live.screencast import Frame

BUTTONS = {"left", "middle", "right", "none"}
MOUSE_EVENTS = {"down": "mousePressed", "up": "mouseReleased", "move": "mouseMoved"}
MAX_TEXT = 4096
# Keys that produce no text: their Windows virtual key codes, which Chromium needs to act on them.
SPECIAL_KEYS = {
    "Enter": 13,
    "Backspace": 8,
    "Tab": 9,
    "Escape": 27,
    "Delete": 46,
    "Insert": 45,
    "Home": 36,
    "End": 35,
    "PageUp": 33,
    "PageDown": 34,
    "ArrowLeft": 37,
    "ArrowUp": 38,
    "ArrowRight": 39,
    "ArrowDown": 40,
    "Shift": 16,
    "Control": 17,
    "Alt": 18,
    "Meta": 91,
    "CapsLock": 20,
    " ": 32,
    **{f"F{n}": 111 + n for n in range(1, 13)},
}


def _unit(value: Any) -> float | None:
    """A coordinate as a fraction of the picture, 0..1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def _modifiers(message: dict[str, Any]) -> int:
    bits = message.get("modifiers", 0)
    return bits if isinstance(bits, int) and 0 <= bits <= 15 else 0


def translate(message: Any, frame: Frame | None) -> list[tuple[str, dict[str, Any]]]:
    """The CDP commands for one viewer message, or none when it is not valid input."""
    if not isinstance(message, dict):
        return []
    kind = message.get("type")
    if kind in ("mouse", "wheel"):
        x, y = _unit(message.get("x")), _unit(message.get("y"))
        if frame is None or x is None or y is None or not frame.width or not frame.height:
            return []
        point = {"x": round(x * frame.width, 1), "y": round(y * frame.height, 1), "modifiers": _modifiers(message)}
        if kind == "wheel":
            dx, dy = message.get("deltaX", 0), message.get("deltaY", 0)
            if not all(isinstance(d, int | float) and math.isfinite(d) and abs(d) <= 10_000 for d in (dx, dy)):
                return []
            return [("Input.dispatchMouseEvent", {"type": "mouseWheel", **point, "deltaX": dx, "deltaY": dy})]
        event = MOUSE_EVENTS.get(message.get("event"))
        button = message.get("button", "left" if event != "mouseMoved" else "none")
        clicks = message.get("clickCount", 1)
        if event is None or button not in BUTTONS or not isinstance(clicks, int) or not 0 <= clicks <= 3:
            return []
        return [
            (
                "Input.dispatchMouseEvent",
                {"type": event, **point, "button": button, "clickCount": clicks if event != "mouseMoved" else 0},
            )
        ]
    if kind == "key":
        key, event = message.get("key"), message.get("event")
        if not isinstance(key, str) or event not in ("down", "up") or not key:
            return []
        code = message.get("code") if isinstance(message.get("code"), str) and len(message["code"]) <= 32 else ""
        modifiers = _modifiers(message)
        base = {"key": key, "code": code, "modifiers": modifiers}
        if key in SPECIAL_KEYS:
            base["windowsVirtualKeyCode"] = SPECIAL_KEYS[key]
            if event == "up":
                return [("Input.dispatchKeyEvent", {"type": "keyUp", **base})]
            text = {"Enter": "\r", " ": " "}.get(key)
            return [
                (
                    "Input.dispatchKeyEvent",
                    {"type": "keyDown" if text else "rawKeyDown", **base, **({"text": text} if text else {})},
                )
            ]
        if len(key) != 1 or not key.isprintable():  # one character; longer text comes as a "text" message
            return []
        if event == "up":
            return [("Input.dispatchKeyEvent", {"type": "keyUp", **base})]
        # With Control/Alt/Meta held the key is a shortcut, not text.
        text = {} if modifiers & (1 | 2 | 4) else {"text": key, "unmodifiedText": key}
        return [("Input.dispatchKeyEvent", {"type": "keyDown", **base, **text})]
    if kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            return []
        return [("Input.insertText", {"text": text})]
    return []

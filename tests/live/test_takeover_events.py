"""A person's input through a live view as the run's `live.input` events (clicks one by one, typing as a
count of characters in bursts, named keys and shortcuts, scrolls summed; never the typed text, never mouse
moves), and the refusal of a take-over saying who holds the browser and until when."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.live.service import InputLog
from app.locks import Holder
from app.runtimes.controller import controller_busy


def _log() -> tuple[InputLog, list[tuple[str, dict]]]:
    emitted: list[tuple[str, dict]] = []
    return InputLog(lambda type, **data: emitted.append((type, data))), emitted


def test_input_is_recorded_as_the_persons_actions_without_the_text():
    async def scenario() -> list[tuple[str, dict]]:
        log, emitted = _log()
        log.QUIET_SECONDS = 0.05
        log.record({"type": "mouse", "event": "move", "x": 0.1, "y": 0.1})
        log.record({"type": "mouse", "event": "down", "x": 0.5, "y": 0.25, "button": "left"})
        log.record({"type": "mouse", "event": "up", "x": 0.5, "y": 0.25})
        for char in "secret":
            log.record({"type": "key", "event": "down", "key": char})
            log.record({"type": "key", "event": "up", "key": char})
        log.record({"type": "key", "event": "down", "key": "Shift"})
        log.record({"type": "key", "event": "down", "key": "Enter"})
        log.record({"type": "key", "event": "down", "key": "a", "modifiers": 2})
        log.record({"type": "wheel", "x": 0.5, "y": 0.5, "deltaY": 100})
        log.record({"type": "wheel", "x": 0.5, "y": 0.5, "deltaY": 150})
        await asyncio.sleep(0.2)  # the scroll burst ends
        log.record({"type": "text", "text": "pasted words"})
        log.record({"type": "key", "event": "down", "key": "x"})
        log.flush()
        return emitted

    emitted = asyncio.run(scenario())
    assert [data for _, data in emitted] == [
        {"action": "click", "x": 0.5, "y": 0.25, "button": "left"},
        {"action": "type", "chars": 6},
        {"action": "key", "key": "Enter"},
        {"action": "key", "key": "Control+a"},
        {"action": "scroll", "x": 0.5, "y": 0.5, "deltaY": 250},
        {"action": "type", "chars": 12, "paste": True},
        {"action": "type", "chars": 1},
    ]
    assert {type for type, _ in emitted} == {"live.input"}
    assert "secret" not in str(emitted) and "pasted" not in str(emitted)


def test_characters_typed_with_altgr_option_or_a_bad_modifier_are_counted_not_named():
    async def scenario() -> list[tuple[str, dict]]:
        log, emitted = _log()
        log.record({"type": "key", "event": "down", "key": "@", "modifiers": 3})  # AltGr on Windows: Ctrl+Alt
        log.record({"type": "key", "event": "down", "key": "å", "modifiers": 1})  # Option on macOS: Alt
        log.record({"type": "key", "event": "down", "key": "€", "modifiers": 2})  # not a letter or digit
        log.record({"type": "key", "event": "down", "key": "z", "modifiers": True})  # no bits the browser got
        log.record({"type": "key", "event": "down", "key": "c", "modifiers": 4})  # Meta+c: a shortcut
        log.flush()
        return emitted

    emitted = asyncio.run(scenario())
    assert [data for _, data in emitted] == [{"action": "type", "chars": 4}, {"action": "key", "key": "Meta+c"}]
    assert not any(char in str(emitted) for char in "@å€z")


def test_a_refusal_names_the_holder_and_until_when():
    until = datetime(2026, 5, 1, 12, 30, 5, tzinfo=UTC)
    lease = controller_busy("rt", Holder("connection", "0c1f0000-0000-0000-0000-000000000001"), until)
    assert lease.code == "runtime.controller_busy" and lease.status == 409
    assert "controlled by a CDP client (lease 0c1f0000-0000-0000-0000-000000000001) until 12:30:05 UTC" in lease.message
    assert "revoke the browser's connections" in lease.message
    assert lease.details["holder"] == {
        "kind": "connection",
        "id": "0c1f0000-0000-0000-0000-000000000001",
        "holder": "agent",
        "until": "2026-05-01T12:30:05.000Z",
    }
    person = controller_busy("rt", Holder("live_view", "ab" * 16), until)
    assert "controlled by a person through a live view" in person.message and "until" not in person.message
    assert person.details["holder"]["holder"] == "human"

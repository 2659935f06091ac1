"""The frame scanner against frames built by the `websockets` library itself, split every which way."""

from __future__ import annotations

import random

from websockets.frames import Close, Frame, Opcode

from app.cdp.frames import CLOSE, PREFIX_BYTES, TEXT, FrameScanner, close_frame


def encode(frame: Frame, mask: bool) -> bytes:
    return frame.serialize(mask=mask, extensions=[])


def scan(stream: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    seen: list[tuple[int, bytes]] = []
    scanner = FrameScanner(lambda op, prefix: seen.append((op, prefix)))
    start = 0
    for cut in [*cuts, len(stream)]:
        assert scanner.feed(stream[start:cut]) == cut - start
        start = cut
    assert scanner.at_boundary
    return seen


def test_prefixes_of_masked_and_unmasked_frames_under_any_split():
    small = '{"id":7,"method":"Page.navigate","params":{"url":"http://127.0.0.1/"}}'
    medium = '{"id":8,"method":"Runtime.evaluate","params":{"expression":"' + "x" * 300 + '"}}'
    large = '{"id":9,"result":{"data":"' + "A" * 70_000 + '"}}'
    frames = [
        Frame(Opcode.TEXT, small.encode()),
        Frame(Opcode.BINARY, b"\x00" * 50),
        Frame(Opcode.TEXT, medium.encode()),
        Frame(Opcode.PING, b""),
        Frame(Opcode.TEXT, large.encode()),
        Frame(Opcode.TEXT, b""),
        Frame(Opcode.CLOSE, Close(1000, "bye").serialize()),
    ]
    expected = [
        (TEXT, small.encode()),
        (TEXT, medium.encode()[:PREFIX_BYTES]),
        (TEXT, large.encode()[:PREFIX_BYTES]),
        (TEXT, b""),
        (CLOSE, b"\x03\xe8bye"),
    ]
    rng = random.Random(5)
    for mask in (True, False):
        stream = b"".join(encode(f, mask) for f in frames)
        assert scan(stream, []) == expected
        assert scan(stream, list(range(1, len(stream)))[:400]) == expected  # byte by byte at the start
        for _ in range(50):
            cuts = sorted(rng.sample(range(1, len(stream)), 12))
            assert scan(stream, cuts) == expected


def test_stop_at_boundary_returns_the_end_of_the_current_frame():
    first = encode(Frame(Opcode.TEXT, b'{"id":1}'), False)
    second = encode(Frame(Opcode.TEXT, b'{"id":2}'), False)
    scanner = FrameScanner(lambda *_: None)
    assert scanner.feed(first[:3]) == 3 and not scanner.at_boundary
    assert scanner.feed(first[3:] + second, stop_at_boundary=True) == len(first) - 3
    assert scanner.at_boundary


def test_close_frame_is_what_websockets_parses():
    data = close_frame(1000, "lease expired")
    assert data == encode(Frame(Opcode.CLOSE, Close(1000, "lease expired").serialize()), False)

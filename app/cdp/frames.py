"""Websocket frame boundaries in a byte stream, found without copying or decoding payloads.

The splice relays bytes as they come; this scanner follows along, frame header by frame header,
and hands the first bytes of each text or close frame (unmasked) to a callback. That is all the
proxy needs: a CDP method name, a reply id, a close code, and where frames end.
"""

from __future__ import annotations

from collections.abc import Callable

PREFIX_BYTES = 160
TEXT, CLOSE = 0x1, 0x8


def _unmask(chunk: bytes, mask: bytes, offset: int) -> bytes:
    if not chunk:
        return chunk
    key = (mask[offset % 4 :] + mask[: offset % 4]) * (len(chunk) // 4 + 1)
    return (int.from_bytes(chunk, "big") ^ int.from_bytes(key[: len(chunk)], "big")).to_bytes(len(chunk), "big")


class FrameScanner:
    def __init__(self, on_frame: Callable[[int, bytes], None], prefix_bytes: int = PREFIX_BYTES) -> None:
        self.on_frame = on_frame
        self.prefix_bytes = prefix_bytes
        self._header = bytearray()
        self._remaining = 0  # payload bytes of the current frame still to come
        self._in_payload = False
        self._opcode = 0
        self._mask: bytes | None = None
        self._prefix = bytearray()
        self._want = 0  # prefix bytes still wanted
        self._frames = 0

    @property
    def at_boundary(self) -> bool:
        return not self._in_payload and not self._header

    def feed(self, data: bytes, stop_at_boundary: bool = False) -> int:
        """Scan `data`; returns how many bytes were consumed (all, unless stop_at_boundary hit a frame end)."""
        i, n = 0, len(data)
        while i < n:
            if not self._in_payload:
                done = self._frames
                i = self._read_header(data, i)
                if not self._in_payload:
                    # Header still incomplete (i == n), or an empty frame just finished.
                    if stop_at_boundary and self._frames != done:
                        return i
                    continue
            take = min(self._remaining, n - i)
            if self._want:
                part = data[i : i + min(take, self._want)]
                if self._mask is not None:
                    part = _unmask(part, self._mask, len(self._prefix))
                self._prefix += part
                self._want -= len(part)
            i += take
            self._remaining -= take
            if self._remaining == 0:
                self._finish()
                if stop_at_boundary:
                    return i
        return i

    def _read_header(self, data: bytes, i: int) -> int:
        n = len(data)
        if not self._header and n - i >= 14:
            # Fast path, the usual case: the whole header is in this chunk (14 bytes is the longest).
            b1 = data[i + 1]
            size = b1 & 0x7F
            pos = i + 2
            if size == 126:
                size, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
            elif size == 127:
                size, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
            if b1 & 0x80:
                self._mask, pos = data[pos : pos + 4], pos + 4
            else:
                self._mask = None
            self._start(data[i] & 0x0F, size)
            return pos
        header = self._header
        while i < n:
            header.append(data[i])
            i += 1
            if len(header) < 2:
                continue
            size = header[1] & 0x7F
            need = 2 + (2 if size == 126 else 8 if size == 127 else 0) + (4 if header[1] & 0x80 else 0)
            if len(header) < need:
                continue
            pos = 2
            if size == 126:
                size, pos = int.from_bytes(header[2:4], "big"), 4
            elif size == 127:
                size, pos = int.from_bytes(header[2:10], "big"), 10
            self._mask = bytes(header[pos : pos + 4]) if header[1] & 0x80 else None
            opcode = header[0] & 0x0F
            header.clear()
            self._start(opcode, size)
            return i
        return i

    def _start(self, opcode: int, size: int) -> None:
        self._opcode = opcode
        self._remaining = size
        self._want = min(self.prefix_bytes, size) if opcode in (TEXT, CLOSE) else 0
        self._prefix = bytearray()
        if size == 0:
            self._finish()
        else:
            self._in_payload = True

    def _finish(self) -> None:
        self._in_payload = False
        self._frames += 1
        if self._opcode in (TEXT, CLOSE):
            self.on_frame(self._opcode, bytes(self._prefix))


def close_frame(code: int, reason: str) -> bytes:
    """An unmasked (server-to-client) close frame."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return bytes([0x80 | CLOSE, len(payload)]) + payload


def frame_length(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(header length, payload length) of the frame at the start of `buf`, once its header is complete."""
    if len(buf) < 2:
        return None
    size, pos = buf[1] & 0x7F, 2
    if size == 126:
        if len(buf) < 4:
            return None
        size, pos = int.from_bytes(buf[2:4], "big"), 4
    elif size == 127:
        if len(buf) < 10:
            return None
        size, pos = int.from_bytes(buf[2:10], "big"), 10
    if buf[1] & 0x80:
        pos += 4
    return (pos, size) if len(buf) >= pos else None


def parse_frame(raw: bytes) -> tuple[bool, int, bytes]:
    """(fin, opcode, unmasked payload) of one whole frame."""
    header, size = frame_length(raw)
    payload = raw[header : header + size]
    if raw[1] & 0x80:
        payload = _unmask(payload, raw[header - 4 : header], 0)
    return bool(raw[0] & 0x80), raw[0] & 0x0F, payload


def text_frame(payload: bytes) -> bytes:
    """An unmasked (server-to-client) text frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | TEXT, n])
    elif n < 65536:
        head = bytes([0x80 | TEXT, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | TEXT, 127]) + n.to_bytes(8, "big")
    return head + payload

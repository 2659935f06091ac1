"""Streaming multipart/form-data uploads: the `file` part goes straight into the object store.

The body is never held in memory: each chunk the client sends is parsed as it arrives and the file
part's bytes are written to the store's temporary object, which becomes visible only when complete.
Other parts are small text fields (`path`, `name`, `metadata`, ...) kept in a dict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.errors import InvalidRequest
from app.storage.base import ObjectStore, StoredObject, TooLarge

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
# Bytes of the body that are not the file itself (boundaries, part headers, text fields).
ENVELOPE_ALLOWANCE = MAX_FIELDS * (MAX_FIELD_BYTES + 1024)


@dataclass
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    stored: StoredObject | None = None
    filename: str | None = None
    content_type: str | None = None


def _invalid(message: str, field_name: str = "body") -> InvalidRequest:
    return InvalidRequest(
        message, details={"fields": [{"field": field_name, "in": "body", "message": message, "type": "multipart"}]}
    )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Parts:
    """python-multipart callbacks: collects text fields, queues file bytes for the writer."""

    def __init__(self, received: Received) -> None:
        self.received = received
        self.pending: list[bytes] = []
        self.headers: dict[bytes, bytes] = {}
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.name: str | None = None
        self.is_file = False
        self.value = bytearray()
        self.seen_file = False
        self.ended = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self.headers, self.name, self.is_file, self.value = {}, None, False, bytearray()

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field, self.header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise _invalid("Every multipart part needs a name")
        self.name = _decode(options[b"name"])
        if self.name == FILE_FIELD:
            if self.seen_file:
                raise _invalid("Send a single `file` part", FILE_FIELD)
            self.seen_file = self.is_file = True
            self.received.filename = _decode(options[b"filename"]) if b"filename" in options else None
            part_type, _ = parse_options_header(self.headers.get(b"content-type"))
            self.received.content_type = _decode(part_type) if part_type else None
        elif b"filename" in options:
            raise _invalid(f"Unexpected file part `{self.name}`; send the bytes as `file`", self.name)
        elif len(self.received.fields) >= MAX_FIELDS:
            raise _invalid("Too many form fields")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            self.pending.append(data[start:end])
            return
        self.value += data[start:end]
        if len(self.value) > MAX_FIELD_BYTES:
            raise _invalid(f"Field `{self.name}` is longer than {MAX_FIELD_BYTES} bytes", self.name or "body")

    def part_end(self) -> None:
        if not self.is_file and self.name is not None:
            try:
                self.received.fields[self.name] = bytes(self.value).decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid(f"Field `{self.name}` is not UTF-8 text", self.name) from None

    def end(self) -> None:
        self.ended = True


async def receive(
    store: ObjectStore,
    key: str,
    *,
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    max_file_bytes: int,
) -> Received:
    """Parse a multipart body, storing its `file` part under `key`.

    Raises 400 `request.invalid` for a malformed body or a missing `file` part and 413
    `request.too_large` past `max_file_bytes`; in every failure nothing is left under `key`.
    """
    mime, options = parse_options_header(content_type)
    if mime != b"multipart/form-data" or not options.get(b"boundary"):
        raise _invalid("Send the file as multipart/form-data with a `file` part", FILE_FIELD)
    max_total = max_file_bytes + ENVELOPE_ALLOWANCE
    if content_length and content_length.isdigit() and int(content_length) > max_total:
        raise TooLarge(max_file_bytes)
    received = Received()
    parts = _Parts(received)
    parser = MultipartParser(options[b"boundary"], parts.callbacks())

    async def file_bytes() -> AsyncIterator[bytes]:
        total = 0
        async for chunk in body:
            total += len(chunk)
            if total > max_total:
                raise TooLarge(max_file_bytes)
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise _invalid("Malformed multipart body") from None
            while parts.pending:
                yield parts.pending.pop(0)
        parser.finalize()
        if not parts.ended:
            raise _invalid("Incomplete multipart body")

    stored = await store.put_stream(key, file_bytes(), max_bytes=max_file_bytes)
    if not parts.seen_file:
        await store.delete(key)
        raise _invalid("A `file` part is required", FILE_FIELD)
    received.stored = stored
    return received

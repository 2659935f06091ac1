"""The filesystem object store: atomic puts, caps, ranges, and nothing visible after a failed write."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from app.core.errors import Unavailable
from app.storage import FilesystemStore, TooLarge, new_key


def everything(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def chunks(*parts: bytes, fail_after: int | None = None):
    for i, part in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("client went away")
        await asyncio.sleep(0)
        yield part


async def read(store, key, start=0, end=None) -> bytes:
    return b"".join([c async for c in store.open(key, start, end)])


async def test_put_stream_round_trip(tmp_path):
    store = FilesystemStore(tmp_path)
    key = new_key("files")
    parts = [b"a" * 700_000, b"b" * 700_000, b"", b"c"]
    stored = await store.put_stream(key, chunks(*parts), max_bytes=2_000_000)
    data = b"".join(parts)
    assert stored.size == len(data) == await store.size(key)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await read(store, key) == data
    assert await read(store, key, 699_999, 700_001) == b"abb"
    assert everything(tmp_path) == [key]


async def test_interrupted_and_oversize_puts_leave_nothing(tmp_path):
    store = FilesystemStore(tmp_path)
    key = new_key("files")
    with pytest.raises(ConnectionResetError):
        await store.put_stream(key, chunks(b"x" * 2_000_000, b"y", fail_after=1))
    with pytest.raises(TooLarge):
        await store.put_stream(key, chunks(b"x" * 1024, b"y"), max_bytes=1024)
    assert not await store.exists(key)
    assert everything(tmp_path) == []


async def test_put_file_copies_and_keeps_the_source(tmp_path):
    store = FilesystemStore(tmp_path / "objects")
    source = tmp_path / "download.pdf"
    source.write_bytes(b"%PDF" * 1000)
    stored = await store.put_file(new_key("artifacts"), source)
    assert source.exists() and await read(store, stored.key) == source.read_bytes()
    with pytest.raises(TooLarge):
        await store.put_file(new_key("artifacts"), source, max_bytes=10)
    assert everything(tmp_path / "objects") == [stored.key]


async def test_missing_objects_and_bad_keys(tmp_path):
    store = FilesystemStore(tmp_path)
    key = new_key("files")
    with pytest.raises(Unavailable):
        await store.size(key)
    with pytest.raises(Unavailable):
        await read(store, key)
    await store.delete(key)  # deleting a missing object is fine
    for bad in ("../etc/passwd", "files/../../x", "/abs", "files/not-a-uuid"):
        with pytest.raises(ValueError):
            await store.put_stream(bad, chunks(b"x"))

"""A browser file's download reads what the file held when it was opened, never more: a (hostile) browser
appending to it meanwhile cannot make the server read, hash or send without end."""

from __future__ import annotations

import asyncio
import hashlib
import os

from app.browsing import files


async def _sent(f, size: int) -> bytes:
    return b"".join([chunk async for chunk in files._read(f, size)])


def test_a_growing_file_is_read_up_to_its_size_when_opened(tmp_path):
    path = tmp_path / "grows.bin"
    path.write_bytes(b"a" * 1000)
    f = open(path, "rb")
    size = os.fstat(f.fileno()).st_size
    with open(path, "ab") as more:  # the browser keeps writing
        more.write(b"b" * 5000)
    got_size, sha = files._digest(f, size)
    assert got_size == 1000 and sha == hashlib.sha256(b"a" * 1000).hexdigest()
    with open(path, "ab") as more:
        more.write(b"c" * 5000)
    assert asyncio.run(_sent(f, size)) == b"a" * 1000 and f.closed

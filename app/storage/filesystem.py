"""The filesystem object store: one file per key under the objects directory.

Writes go to `<root>/.tmp/<random>.part` and are renamed into place when complete (same filesystem,
so the rename is atomic); a failed or cancelled write removes its temporary file. Every blocking call
runs in a worker thread so the event loop keeps serving while bytes move.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from app.storage.base import CHUNK_SIZE, StoredObject, TooLarge, check_key, check_list_prefix, object_missing

TMP_DIR = ".tmp"


class FilesystemStore:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    # --- writing -------------------------------------------------------------------------------

    def _open_tmp(self) -> tuple[Path, BinaryIO]:
        tmp_dir = self.root / TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        return tmp, open(tmp, "xb")

    @staticmethod
    def _write(f: BinaryIO, digest, data: bytes) -> None:
        digest.update(data)
        f.write(data)

    def _commit(self, f: BinaryIO, tmp: Path, key: str) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        final = self.path_of(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    @staticmethod
    def _discard(f: BinaryIO, tmp: Path) -> None:
        with contextlib.suppress(OSError):
            f.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        check_key(key)
        tmp, f = await asyncio.to_thread(self._open_tmp)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                buffer += chunk
                if len(buffer) >= CHUNK_SIZE:
                    data, buffer = bytes(buffer), bytearray()
                    await asyncio.to_thread(self._write, f, digest, data)
            if buffer:
                await asyncio.to_thread(self._write, f, digest, bytes(buffer))
            await asyncio.to_thread(self._commit, f, tmp, key)
        except BaseException:
            self._discard(f, tmp)
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def _copy_in(self, key: str, source: Path, max_bytes: int | None) -> StoredObject:
        tmp, f = self._open_tmp()
        digest = hashlib.sha256()
        size = 0
        try:
            with open(source, "rb") as src:
                while data := src.read(CHUNK_SIZE):
                    size += len(data)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(max_bytes)
                    self._write(f, digest, data)
            self._commit(f, tmp, key)
        except BaseException:
            self._discard(f, tmp)
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def put_file(self, key: str, source: Path, *, max_bytes: int | None = None) -> StoredObject:
        check_key(key)
        return await asyncio.to_thread(self._copy_in, key, Path(source), max_bytes)

    # --- reading -------------------------------------------------------------------------------

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise object_missing(key) from None
        try:
            if start:
                await asyncio.to_thread(f.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                n = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                data = await asyncio.to_thread(f.read, n)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            f.close()

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(os.stat, self.path_of(key))).st_size
        except FileNotFoundError:
            raise object_missing(key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        if key.count("/") == 2:  # a part of something: its directory goes with its last part
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.parent.rmdir)

    def _list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        found = []
        for directory, _dirs, files in os.walk(base):
            for name in files:
                key = os.path.relpath(os.path.join(directory, name), self.root).replace(os.sep, "/")
                with contextlib.suppress(ValueError):
                    found.append(check_key(key))
        return sorted(found)

    async def list(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._list, check_list_prefix(prefix))

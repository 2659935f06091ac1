"""The S3 object store's contract against moto's S3 server with authentication on: round trips,
ranges, deletes, multipart uploads with bounded memory, a refused key, and an unreachable store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import traceback
import tracemalloc

import pytest

from app.core.config import Settings, StorageSettingsError
from app.core.errors import Unavailable
from app.storage import make_store, new_key
from app.storage.base import TooLarge
from app.storage.s3 import S3Store
from tests.storage_s3.conftest import Cuttable, MotoProcess

MiB = 1024 * 1024


def store_of(moto: MotoProcess, prefix: str, tmp_path, **overrides) -> S3Store:
    store = make_store(Settings(data_dir=tmp_path, **moto.settings(prefix, **overrides)))
    assert isinstance(store, S3Store)
    return store


async def chunks_of(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(store, key, start=0, end=None) -> bytes:
    return b"".join([c async for c in store.open(key, start, end)])


def test_without_storage_url_the_filesystem_store_stays(tmp_path):
    store = make_store(Settings(data_dir=tmp_path))
    assert store.name == "filesystem" and store.root == (tmp_path / "objects").resolve()


@pytest.mark.parametrize(
    "bad",
    [
        {"storage_url": "s3:///prefix"},
        {"storage_url": "gs://bucket/prefix"},
        {"storage_secret_access_key": None},
        {"storage_access_key_id": ""},
        {"storage_endpoint": "127.0.0.1:9000"},
    ],
)
def test_a_bad_storage_setting_refuses_to_start(moto, prefix, tmp_path, bad):
    with pytest.raises(StorageSettingsError) as refused:
        Settings(data_dir=tmp_path, **{**moto.settings(prefix), **bad})
    shown = "".join(traceback.format_exception(refused.value))
    assert "BCTRL_STORAGE_" in shown and moto.secret_access_key not in shown and moto.access_key_id not in shown


def test_credentials_are_never_in_a_repr(moto, prefix, tmp_path):
    settings = Settings(data_dir=tmp_path, **moto.settings(prefix))
    store = make_store(settings)
    for text in (repr(settings), repr(store), str(settings)):
        assert moto.secret_access_key not in text and moto.access_key_id not in text


async def test_put_get_range_size_exists_delete(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path)
    data = os.urandom(300_000)
    key = new_key("files")
    stored = await store.put_stream(key, chunks_of(data))
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert moto.keys(prefix) == [f"{prefix}/{key}"]  # under the prefix, nowhere else

    assert await read_all(store, key) == data
    assert await read_all(store, key, 1000, 1999) == data[1000:2000]
    assert await read_all(store, key, 299_990) == data[299_990:]
    assert await store.size(key) == len(data)
    assert await store.exists(key) and not await store.exists(new_key("files"))

    source = tmp_path / "src.bin"
    source.write_bytes(data[:1234])
    other = new_key("artifacts")
    assert (await store.put_file(other, source)).size == 1234
    assert source.exists() and await read_all(store, other) == data[:1234]

    await store.delete(key)
    await store.delete(key)  # a missing key is not an error
    assert not await store.exists(key)
    with pytest.raises(Unavailable) as missing:
        await store.size(key)
    assert missing.value.code == "storage.unavailable" and missing.value.status == 503
    with pytest.raises(Unavailable):
        await read_all(store, key)
    assert moto.keys(prefix) == [f"{prefix}/{other}"]


async def test_empty_body(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path)
    key = new_key("files")
    assert (await store.put_stream(key, chunks_of(b""))).size == 0
    assert await store.size(key) == 0 and await read_all(store, key) == b""


async def test_a_20_mb_upload_goes_multipart_with_bounded_memory(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path, storage_part_bytes=5 * MiB)
    total = 20 * MiB
    block = os.urandom(MiB)
    digest = hashlib.sha256()

    async def body():
        for i in range(total // (256 * 1024)):
            chunk = block[(i % 4) * 256 * 1024 : (i % 4 + 1) * 256 * 1024]
            digest.update(chunk)
            yield chunk

    key = new_key("recordings")
    tracemalloc.start()
    try:
        stored = await store.put_stream(key, body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == total and stored.sha256 == digest.hexdigest()
    # One part (5 MiB) and its copies on the way out, never the 20 MiB body.
    assert peak < 10 * MiB, f"peak {peak / MiB:.1f} MiB"
    head = moto.client.head_object(Bucket="bctrl-objects", Key=f"{prefix}/{key}")
    assert head["ContentLength"] == total and head["ETag"].strip('"').endswith("-4")  # four parts
    got = hashlib.sha256()
    tracemalloc.start()
    try:
        async for chunk in store.open(key):
            got.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == stored.sha256
    assert read_peak < 8 * MiB, f"download peak {read_peak / MiB:.1f} MiB"  # streamed, a chunk or two at a time
    assert await read_all(store, key, 5 * MiB - 10, 5 * MiB + 9) == (block * 20)[5 * MiB - 10 : 5 * MiB + 10]


async def test_too_large_aborts_the_multipart_upload(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path, storage_part_bytes=5 * MiB)
    key = new_key("files")
    with pytest.raises(TooLarge):
        await store.put_stream(key, chunks_of(os.urandom(12 * MiB), MiB), max_bytes=11 * MiB)
    assert moto.keys(prefix) == []
    assert [u for u in moto.uploads() if u["Key"].startswith(prefix)] == []


async def test_a_key_that_is_not_the_servers_is_refused(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path)
    for bad in ("../escape", "files/../../x", "/files/abc", "files/not-a-uuid", "x" * 40):
        with pytest.raises(ValueError):
            await store.put_stream(bad, chunks_of(b"x"))
        with pytest.raises(ValueError):
            await store.size(bad)
    assert moto.keys() == [k for k in moto.keys() if not k.startswith("..") and "/../" not in k]
    assert moto.keys(prefix) == []


async def test_wrong_credentials_answer_storage_unavailable(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path, storage_secret_access_key="not-the-secret")
    with pytest.raises(Unavailable) as refused:
        await store.put_stream(new_key("files"), chunks_of(b"hello"))
    assert refused.value.code == "storage.unavailable"
    assert moto.keys(prefix) == []


async def test_a_missing_bucket_answers_storage_unavailable(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path, storage_url=f"s3://no-such-bucket/{prefix}")
    for call in (store.put_stream(new_key("files"), chunks_of(b"x")), store.ready()):
        with pytest.raises(Unavailable) as refused:
            await call
        assert refused.value.code == "storage.unavailable"
    await store_of(moto, prefix, tmp_path).ready()


async def test_the_store_unreachable_mid_upload_leaves_no_object(moto, prefix, tmp_path):
    link = await Cuttable(moto.port).start()
    store = store_of(moto, prefix, tmp_path, storage_endpoint=link.endpoint, storage_part_bytes=5 * MiB)
    key = new_key("files")
    sent = 0

    async def body():
        nonlocal sent
        while sent < 30 * MiB:
            if sent == 12 * MiB:
                link.cut()  # two parts are up; the store goes away
            sent += MiB
            yield os.urandom(MiB)

    with pytest.raises(Unavailable) as failed:
        await store.put_stream(key, body())
    assert failed.value.code == "storage.unavailable" and failed.value.status == 503
    assert sent < 30 * MiB  # failed at the first part after the store went away, not at the end
    for call in (store.size(key), read_all(store, key), store.exists(key), store.delete(key)):
        with pytest.raises(Unavailable):
            await call
    # Nothing half-written is visible: no object. The abort could not reach the store, so the parts
    # wait, invisible, for the bucket's AbortIncompleteMultipartUpload rule.
    assert moto.keys(prefix) == []
    assert [u["Key"] for u in moto.uploads() if u["Key"].startswith(prefix)] == [f"{prefix}/{key}"]


async def test_the_store_killed_mid_upload_answers_storage_unavailable(tmp_path, prefix):
    own = MotoProcess()  # a store of this test's own, killed outright
    try:
        store = store_of(own, prefix, tmp_path, storage_part_bytes=5 * MiB, storage_timeout_seconds=2)

        async def body():
            for i in range(30):
                if i == 12:
                    own.proc.kill()
                    own.proc.wait()
                yield os.urandom(MiB)

        with pytest.raises(Unavailable) as failed:
            await store.put_stream(new_key("files"), body())
        assert failed.value.code == "storage.unavailable"
    finally:
        own.stop()


async def test_a_cancelled_upload_aborts(moto, prefix, tmp_path):
    store = store_of(moto, prefix, tmp_path, storage_part_bytes=5 * MiB)
    started = asyncio.Event()

    async def body():
        for _ in range(8):
            yield os.urandom(MiB)
        started.set()
        await asyncio.sleep(60)
        yield b"never"

    task = asyncio.create_task(store.put_stream(new_key("files"), body()))
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert moto.keys(prefix) == []
    assert [u for u in moto.uploads() if u["Key"].startswith(prefix)] == []

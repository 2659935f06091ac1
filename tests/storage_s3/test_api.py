"""End to end with BCTRL_STORAGE_URL set: an in-process server whose object store is moto's S3 (auth
on). Uploads through the API land in the bucket under the prefix and download back identical (ranges
too); an artifact and a run's recording go through the same store; with the store unreachable an
upload is a 503 `storage.unavailable` that leaves no object and no row, and a download is a 503."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from urllib.parse import urlsplit

from app.artifacts import service as artifacts
from app.core import generation
from tests.storage_s3.conftest import Cuttable
from tests.support import started_runtime


async def new_space(api) -> str:
    created = await api.post("/v1/spaces", json={"name": "s3"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def upload(api, space_id: str, data: bytes, path: str):
    return await api.post(
        f"/v1/spaces/{space_id}/storage/files",
        files={"file": ("blob.bin", data, "application/octet-stream")},
        data={"path": path},
    )


async def test_files_and_artifacts_live_in_the_bucket(make_server, moto, prefix, tmp_path):
    async with make_server("sqlite", **moto.settings(prefix, storage_part_bytes=5 * 1024 * 1024)) as srv:
        async with await srv.client() as api:
            space_id = await new_space(api)
            data = os.urandom(12 * 1024 * 1024 + 17)  # multipart: three parts
            created = await upload(api, space_id, data, "big/blob.bin")
            assert created.status_code == 201, created.text
            f = created.json()
            assert f["sizeBytes"] == len(data)
            keys = moto.keys(prefix)
            assert len(keys) == 1 and keys[0].startswith(f"{prefix}/files/")
            assert not srv.settings.objects_dir.exists() or not any(srv.settings.objects_dir.rglob("*"))

            got = await api.get(f["downloadUrl"])
            assert got.status_code == 200 and got.content == data
            assert got.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
            part = await api.get(f["downloadUrl"], headers={"Range": "bytes=5242870-5242899"})
            assert part.status_code == 206 and part.content == data[5242870:5242900]
            assert part.headers["content-range"] == f"bytes 5242870-5242899/{len(data)}"

            deleted = await api.delete(f"/v1/spaces/{space_id}/storage/files/{f['id']}")
            assert deleted.status_code in (200, 204), deleted.text
            assert moto.keys(f"{prefix}/files/") == []

            # An artifact of a run, and the run's recording when it ends, go through the same store.
            async with started_runtime(api) as runtime:
                run_id = runtime["activeRunId"]
                source = tmp_path / "shot.png"
                source.write_bytes(b"\x89PNG" + bytes(500))
                art = await artifacts.record(
                    srv.ctx,
                    run_id=uuid.UUID(run_id),
                    kind="screenshot",
                    name="shot.png",
                    content_type="image/png",
                    source=source,
                )
                assert moto.keys(f"{prefix}/artifacts/") == [f"{prefix}/{art.object_key}"]
                shot = await api.get(f"/v1/runs/{run_id}/artifacts/{art.id}/content")
                assert shot.status_code == 200 and shot.content == source.read_bytes()
                await asyncio.sleep(1.5)  # a few frames for the recording
            deadline = time.monotonic() + 30
            while not moto.keys(f"{prefix}/recordings/") and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            recorded = moto.keys(f"{prefix}/recordings/")
            assert len(recorded) == 1, recorded
            # The object is stored before its artifact row commits: the link comes with the row.
            while True:
                listed = (await api.get(f"/v1/runs/{run_id}/recordings")).json()
                assert len(listed["data"]) == 1, listed
                rec = listed["data"][0]
                if rec["downloadUrl"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert rec["downloadUrl"], rec
            link = urlsplit(rec["downloadUrl"])
            video = await api.get(f"{link.path}?{link.query}")
            assert video.status_code == 200, video.text
            stored = moto.client.get_object(Bucket="bctrl-objects", Key=recorded[0])["Body"].read()
            assert len(stored) > 0 and video.content == stored


async def test_the_store_unreachable_answers_503_and_leaves_nothing(make_server, moto, prefix):
    link = await Cuttable(moto.port).start()
    settings = moto.settings(prefix, storage_endpoint=link.endpoint, storage_timeout_seconds=2)
    async with make_server("sqlite", **settings) as srv, await srv.client() as api:
        space_id = await new_space(api)
        kept = await upload(api, space_id, b"kept", "kept.txt")
        assert kept.status_code == 201, kept.text
        ready = await api.get("/readyz")
        assert ready.json()["checks"]["storage"] == "ok", ready.text
        link.cut()
        ready = await api.get("/readyz")
        assert ready.status_code == 503 and "storage" in ready.json()["unavailable"], ready.text

        refused = await upload(api, space_id, os.urandom(200_000), "lost.bin")
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "storage.unavailable", refused.text  # the seed generation's flat envelope
        assert refused.headers["retry-after"]
        listed = (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()
        assert [x["path"] for x in listed["data"]] == ["kept.txt"]  # no row for the lost upload
        assert len(moto.keys(prefix)) == 1  # and no object

        down = await api.get(kept.json()["downloadUrl"], headers={"BCTRL-Version": generation.CURRENT})
        assert down.status_code == 503 and down.json()["error"]["code"] == "storage.unavailable", down.text

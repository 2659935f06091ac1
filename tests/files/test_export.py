"""Run exports: a ZIP of the run's artifacts saved into space storage, and recorded as an `export` artifact."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest

from app.artifacts import service as artifacts
from tests.files.conftest import started_runtime

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def record(server, tmp_path, run_id: str, data: bytes, kind: str, name: str, content_type: str):
    source = tmp_path / uuid.uuid4().hex
    source.write_bytes(data)
    return await artifacts.record(
        server.ctx, run_id=uuid.UUID(run_id), kind=kind, name=name, content_type=content_type, source=source
    )


async def test_export_zips_the_runs_artifacts(server, api, tmp_path, objects):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        await record(server, tmp_path, run_id, b"a,b\n", "download", "report.csv", "text/csv")
        await record(server, tmp_path, run_id, b"a,c\n", "download", "report.csv", "text/csv")
        await record(server, tmp_path, run_id, b"\x89PNG" + bytes(2000), "screenshot", "page.png", "image/png")
        await record(server, tmp_path, run_id, b"x", "download", "../../evil", "text/plain")

        created = await api.post(
            f"/v1/runs/{run_id}/files/export", json={"name": "bundle.zip"}, headers={"Idempotency-Key": "export-1"}
        )
        assert created.status_code == 201, created.text
        f = created.json()
        assert f["path"] == f"exports/{run_id}/bundle.zip" and f["name"] == "bundle.zip"
        assert f["source"] == "export" and f["contentType"] == "application/zip"
        assert f["runId"] == run_id and f["runtimeId"] == runtime["id"] and f["spaceId"] == runtime["spaceId"]

        got = await api.get(f["downloadUrl"])
        assert got.headers["content-type"] == "application/zip"
        assert got.headers["content-disposition"].startswith('attachment; filename="bundle.zip"')
        with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
            assert sorted(zf.namelist()) == [
                "download/.._.._evil",
                "download/report (2).csv",
                "download/report.csv",
                "manifest.json",
                "screenshot/page.png",
            ]
            assert zf.read("download/report.csv") == b"a,b\n"
            assert zf.read("download/report (2).csv") == b"a,c\n"
            assert zf.read("screenshot/page.png") == b"\x89PNG" + bytes(2000)
            manifest = json.loads(zf.read("manifest.json"))
            assert [m["entry"] for m in manifest["artifacts"]][:2] == ["download/report.csv", "download/report (2).csv"]

        replay = await api.post(
            f"/v1/runs/{run_id}/files/export", json={"name": "bundle.zip"}, headers={"Idempotency-Key": "export-1"}
        )
        assert replay.status_code == 201 and replay.json() == f
        again = await api.post(f"/v1/runs/{run_id}/files/export", json={"name": "bundle.zip"})
        assert again.status_code == 409 and again.json()["code"] == "storage_file.path_exists"

        exported = (await api.get(f"/v1/runs/{run_id}/artifacts", params={"kind": "export"})).json()["data"]
        assert len(exported) == 1 and exported[0]["fileId"] == f["id"]
        assert (await api.get(exported[0]["downloadUrl"])).content == got.content
        assert [x["id"] for x in (await api.get(f"/v1/runs/{run_id}/files")).json()["data"]] == [f["id"]]

        # A second export leaves earlier exports out unless asked, and can pick kinds.
        shots = (await api.post(f"/v1/runs/{run_id}/files/export", json={"kind": ["screenshot"]})).json()
        assert shots["name"].endswith(".zip") and shots["path"] == f"exports/{run_id}/{shots['name']}"
        with zipfile.ZipFile(io.BytesIO((await api.get(shots["downloadUrl"])).content)) as zf:
            assert sorted(zf.namelist()) == ["manifest.json", "screenshot/page.png"]
        everything = (await api.post(f"/v1/runs/{run_id}/files/export", json={})).json()
        with zipfile.ZipFile(io.BytesIO((await api.get(everything["downloadUrl"])).content)) as zf:
            assert not [n for n in zf.namelist() if n.startswith("export/")]
            assert len(zf.namelist()) == 5


async def test_export_refusals(server, api, objects):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        before = objects()
        for body in (
            {"name": "bundle.tar"},
            {"name": "a/b.zip"},
            {"name": "../x.zip"},
            {"kind": ["nope"]},
            {"unknown": 1},
        ):
            refused = await api.post(f"/v1/runs/{run_id}/files/export", json=body)
            assert refused.status_code == 400, (body, refused.text)
        async with await server.client("intruder") as other:
            refused = await other.post(f"/v1/runs/{run_id}/files/export", json={})
            assert refused.status_code == 404 and refused.json()["code"] == "run.not_found"
            listed = await other.get(f"/v1/runs/{run_id}/files")
            assert listed.status_code == 404 and listed.json()["code"] == "run.not_found"
        assert objects() == before
        empty = await api.post(f"/v1/runs/{run_id}/files/export")
        assert empty.status_code == 201, empty.text
        with zipfile.ZipFile(io.BytesIO((await api.get(empty.json()["downloadUrl"])).content)) as zf:
            assert zf.namelist() == ["manifest.json"]

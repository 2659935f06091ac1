"""Runtime files: stage storage files into a live runtime, collect its files back, and never leave its area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.files.conftest import runtime_area, sha256, started_runtime

TRAVERSALS = ["../x", "/etc/passwd", "a/../../b", "a//b", ".", "..", "a\\b", "x/"]


async def upload(api, space_id: str, data: bytes, path: str):
    created = await api.post(f"/v1/spaces/{space_id}/storage/files", files={"file": (path, data)}, data={"path": path})
    assert created.status_code == 201, created.text
    return created.json()


async def test_stage_then_collect_round_trip(server, api, objects):
    data = os.urandom(1_500_000)
    async with started_runtime(api) as runtime:
        rid, space_id = runtime["id"], runtime["spaceId"]
        original = await upload(api, space_id, data, "inputs/payload.bin")

        staged = await api.post(f"/v1/runtimes/{rid}/files/stage", json={"fileId": original["id"]})
        assert staged.status_code == 201, staged.text
        staged = staged.json()
        area = runtime_area(server, rid)
        assert staged["fileId"] == original["id"] and staged["runtimeId"] == rid
        assert staged["name"] == "payload.bin" and staged["runtimePath"] == "payload.bin"
        assert staged["path"] == str(area / "payload.bin") and staged["sizeBytes"] == len(data)
        assert sha256(Path(staged["path"]).read_bytes()) == sha256(data)

        seed = f"/v1/spaces/{space_id}/runtimes/{rid}/files"
        deep = (
            await api.post(f"{seed}/stage", json={"fileId": original["id"], "runtimePath": "in/deep/copy.bin"})
        ).json()
        assert deep["path"] == str(area / "in/deep/copy.bin") and deep["name"] == "copy.bin"
        # Staging again replaces the file in place.
        assert (
            await api.post(f"{seed}/stage", json={"fileId": original["id"], "runtimePath": "in/deep/copy.bin"})
        ).status_code == 201

        listed = (await api.get(seed)).json()
        assert [(f["path"], f["name"], f["sizeBytes"]) for f in listed["files"]] == [
            ("in/deep/copy.bin", "copy.bin", len(data)),
            ("payload.bin", "payload.bin", len(data)),
        ]
        assert listed["data"] == listed["files"] and listed["files"][0]["modifiedAt"].endswith("Z")
        assert (await api.get(f"/v1/runtimes/{rid}/files", params={"limit": 1})).json()["nextCursor"]

        collected = await api.post(
            f"{seed}/collect",
            json={
                "path": "in/deep/copy.bin",
                "storagePath": "outputs/copy.bin",
                "metadata": {"from": "browser"},
                "artifact": {},
            },
        )
        assert collected.status_code == 201, collected.text
        collected = collected.json()
        assert collected["path"] == "outputs/copy.bin" and collected["source"] == "runtime"
        assert collected["runtimeId"] == rid and collected["runId"] == runtime["activeRunId"]
        assert collected["metadata"] == {"from": "browser"} and collected["sizeBytes"] == len(data)
        assert sha256((await api.get(collected["downloadUrl"])).content) == sha256(data)

        artifact = collected["artifact"]
        assert artifact["kind"] == "collected" and artifact["fileId"] == collected["id"]
        assert artifact["runId"] == runtime["activeRunId"] and artifact["path"] == "in/deep/copy.bin"
        assert sha256((await api.get(artifact["downloadUrl"])).content) == sha256(data)

        # Files the browser (or anything on the host) writes into the area can be collected too.
        (area / "report.csv").write_bytes(b"a,b\n")
        flat = await api.post(
            f"/v1/runtimes/{rid}/files/collect",
            json={"runtimePath": "report.csv", "destinationPath": "outputs/report.csv", "name": "Report"},
        )
        assert flat.status_code == 201 and flat.json()["artifact"] is None
        assert flat.json()["contentType"] == "text/csv" and flat.json()["name"] == "Report"

        run_files = (await api.get(f"/v1/runs/{runtime['activeRunId']}/files")).json()
        assert sorted(f["path"] for f in run_files["data"]) == ["outputs/copy.bin", "outputs/report.csv"]

        exists = await api.post(f"{seed}/collect", json={"path": "report.csv", "storagePath": "outputs/report.csv"})
        assert exists.status_code == 409 and exists.json()["code"] == "storage_file.path_exists"
        missing = await api.post(f"{seed}/collect", json={"path": "nope.txt"})
        assert missing.status_code == 404 and missing.json()["code"] == "runtime_file.not_found"
        both = await api.post(f"{seed}/collect", json={"path": "a", "runtimePath": "a"})
        assert both.status_code == 400
    # 1 upload + 2 collected files + 1 artifact copy
    assert len(objects()) == 4


async def test_upload_into_a_runtime(server, api):
    async with started_runtime(api) as runtime:
        rid = runtime["id"]
        data = os.urandom(50_000)
        done = await api.post(
            f"/v1/runtimes/{rid}/files/upload",
            files={"file": ("photo.jpg", data, "image/jpeg")},
            data={"runtimePath": "uploads/photo.jpg", "destinationPath": "up/photo.jpg"},
        )
        assert done.status_code == 201, done.text
        body = done.json()
        assert body["file"]["path"] == "up/photo.jpg" and body["file"]["contentType"] == "image/jpeg"
        assert body["file"]["spaceId"] == runtime["spaceId"] and body["file"]["runtimeId"] == rid
        assert body["staged"]["fileId"] == body["file"]["id"] and body["staged"]["runtimePath"] == "uploads/photo.jpg"
        assert Path(body["staged"]["path"]).read_bytes() == data

        plain = await api.post(
            f"/v1/spaces/{runtime['spaceId']}/runtimes/{rid}/files/upload", files={"file": ("doc.txt", b"doc")}
        )
        assert plain.status_code == 201
        assert plain.json()["file"]["path"] == "doc.txt" and plain.json()["staged"]["runtimePath"] == "doc.txt"


async def test_oversize_uploads_and_collects_are_413(server, api, objects, monkeypatch):
    monkeypatch.setattr(server.settings, "max_upload_bytes", 64 * 1024)
    async with started_runtime(api) as runtime:
        rid = runtime["id"]
        area = runtime_area(server, rid)
        area.mkdir(parents=True, exist_ok=True)
        (area / "big.bin").write_bytes(os.urandom(64 * 1024 + 1))
        refused = await api.post(f"/v1/runtimes/{rid}/files/collect", json={"runtimePath": "big.bin"})
        assert refused.status_code == 413 and refused.json()["code"] == "request.too_large"
        refused = await api.post(
            f"/v1/runtimes/{rid}/files/upload",
            files={"file": ("big.bin", os.urandom(64 * 1024 + 1))},
            data={"runtimePath": "uploaded.bin"},
        )
        assert refused.status_code == 413 and refused.json()["code"] == "request.too_large"
        assert objects() == set()
        assert (await api.get("/v1/files", params={"spaceId": runtime["spaceId"]})).json()["data"] == []
        assert [f["path"] for f in (await api.get(f"/v1/runtimes/{rid}/files")).json()["data"]] == ["big.bin"]


@pytest.mark.parametrize("bad", TRAVERSALS)
async def test_traversal_is_refused_in_every_path_field(server, api, objects, tmp_path, bad):
    outside = tmp_path / f"outside-{os.getpid()}"
    outside.mkdir(exist_ok=True)
    async with started_runtime(api) as runtime:
        rid, space_id = runtime["id"], runtime["spaceId"]
        original = await upload(api, space_id, b"payload", "p.txt")
        (runtime_area(server, rid)).mkdir(parents=True, exist_ok=True)
        (runtime_area(server, rid) / "ok.txt").write_bytes(b"ok")
        before = objects()
        seed = f"/v1/spaces/{space_id}/runtimes/{rid}/files"
        attempts = [
            (f"{seed}/stage", {"fileId": original["id"], "runtimePath": bad}, "runtime_file.path_invalid"),
            (f"/v1/runtimes/{rid}/files/stage", {"fileId": original["id"], "name": bad}, "runtime_file.path_invalid"),
            (f"{seed}/collect", {"path": bad}, "runtime_file.path_invalid"),
            (f"/v1/runtimes/{rid}/files/collect", {"runtimePath": bad}, "runtime_file.path_invalid"),
            (f"{seed}/collect", {"path": "ok.txt", "storagePath": bad}, "storage_file.path_invalid"),
            (
                f"/v1/runtimes/{rid}/files/collect",
                {"runtimePath": "ok.txt", "destinationPath": bad},
                "storage_file.path_invalid",
            ),
        ]
        for url, body, code in attempts:
            refused = await api.post(url, json=body)
            assert refused.status_code == 400, (url, body, refused.text)
            assert refused.json()["code"] == code, (url, body)
        for fields, code in (
            ({"runtimePath": bad}, "runtime_file.path_invalid"),
            ({"destinationPath": bad}, "storage_file.path_invalid"),
        ):
            refused = await api.post(f"/v1/runtimes/{rid}/files/upload", files={"file": ("u.txt", b"u")}, data=fields)
            assert refused.status_code == 400 and refused.json()["code"] == code, refused.text
        files = (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()["data"]
        assert [f["path"] for f in files] == ["p.txt"]
        assert (await api.get(f"/v1/runs/{runtime['activeRunId']}/artifacts")).json()["data"] == []
        assert objects() == before
        assert sorted(p.name for p in runtime_area(server, rid).rglob("*")) == ["ok.txt"]
        assert list(outside.iterdir()) == []
        assert not (server.settings.resolved_browser_root / "files" / "x").exists()


async def test_symlinks_cannot_lead_outside(server, api, objects, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"host secret")
    async with started_runtime(api) as runtime:
        rid, space_id = runtime["id"], runtime["spaceId"]
        original = await upload(api, space_id, b"payload", "p.txt")
        area = runtime_area(server, rid)
        area.mkdir(parents=True, exist_ok=True)
        (area / "escape").symlink_to(outside, target_is_directory=True)
        (area / "secret-link.txt").symlink_to(outside / "secret.txt")
        (area / "inside.txt").write_bytes(b"inside")
        (area / "inside-link.txt").symlink_to(area / "inside.txt")
        before = objects()

        seed = f"/v1/spaces/{space_id}/runtimes/{rid}/files"
        for url, body in (
            (f"{seed}/stage", {"fileId": original["id"], "runtimePath": "escape/planted.txt"}),
            (f"{seed}/stage", {"fileId": original["id"], "runtimePath": "secret-link.txt"}),
            (f"{seed}/collect", {"path": "escape/secret.txt"}),
            (f"{seed}/collect", {"path": "secret-link.txt"}),
        ):
            refused = await api.post(url, json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["code"] == "runtime_file.path_invalid"
        refused = await api.post(
            f"/v1/runtimes/{rid}/files/upload", files={"file": ("u.txt", b"u")}, data={"runtimePath": "escape/u.txt"}
        )
        assert refused.status_code == 400 and refused.json()["code"] == "runtime_file.path_invalid"

        assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
        assert (outside / "secret.txt").read_bytes() == b"host secret"
        assert [f["path"] for f in (await api.get("/v1/files", params={"spaceId": space_id})).json()["data"]] == [
            "p.txt"
        ]
        assert objects() == before
        # Links are not listed; a link that stays inside the area is followed to its target.
        assert [f["path"] for f in (await api.get(seed)).json()["data"]] == ["inside.txt"]
        inside = await api.post(f"{seed}/collect", json={"path": "inside-link.txt", "storagePath": "in.txt"})
        assert inside.status_code == 201 and (await api.get(inside.json()["downloadUrl"])).content == b"inside"


async def test_runtime_must_be_active(server, api, objects):
    space_id = (await api.post("/v1/spaces", json={"name": "w"})).json()["id"]
    runtime = (await api.post("/v1/runtimes", json={"spaceId": space_id})).json()
    assert runtime["status"] == "stopped"
    original = await upload(api, space_id, b"x", "x.txt")
    before = objects()
    for url, body in (
        (f"/v1/runtimes/{runtime['id']}/files/stage", {"fileId": original["id"]}),
        (f"/v1/runtimes/{runtime['id']}/files/collect", {"runtimePath": "x.txt"}),
    ):
        refused = await api.post(url, json=body)
        assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_active"
    refused = await api.post(f"/v1/runtimes/{runtime['id']}/files/upload", files={"file": ("u.txt", b"u")})
    assert refused.status_code == 409 and refused.json()["code"] == "runtime.not_active"
    assert objects() == before
    assert (await api.get(f"/v1/runtimes/{runtime['id']}/files")).json() == {
        "data": [],
        "files": [],
        "nextCursor": None,
    }


async def test_another_accounts_runtime_and_files_are_404(server, api):
    async with started_runtime(api) as runtime:
        rid, space_id = runtime["id"], runtime["spaceId"]
        mine = await upload(api, space_id, b"mine", "mine.txt")
        # A file of another space of the same account cannot be staged either.
        other_space = (await api.post("/v1/spaces", json={"name": "other"})).json()["id"]
        elsewhere = await upload(api, other_space, b"e", "e.txt")
        refused = await api.post(f"/v1/runtimes/{rid}/files/stage", json={"fileId": elsewhere["id"]})
        assert refused.status_code == 404 and refused.json()["code"] == "file.not_found"
        async with await server.client("intruder") as other:
            for response in (
                await other.post(f"/v1/runtimes/{rid}/files/stage", json={"fileId": mine["id"]}),
                await other.post(f"/v1/runtimes/{rid}/files/collect", json={"runtimePath": "a"}),
                await other.get(f"/v1/runtimes/{rid}/files"),
                await other.post(f"/v1/runtimes/{rid}/files/upload", files={"file": ("u", b"u")}),
            ):
                assert response.status_code == 404 and response.json()["code"] == "runtime.not_found"
            async with started_runtime(other) as theirs:
                stolen = await other.post(f"/v1/runtimes/{theirs['id']}/files/stage", json={"fileId": mine["id"]})
                assert stolen.status_code == 404 and stolen.json()["code"] == "file.not_found"
                assert not (runtime_area(server, theirs["id"]) / "mine.txt").exists()

"""Files in the current generation's shape, in process over both backends: `/v1/files` (uploads with
`filename`, the list's filters, `hasMore` and `order`, rename, delete, content), the files runs
record beside them, a run's inputs and outputs (`/v1/runs/{id}/files`), and the flat routes of the
same paths unchanged for requests without `BCTRL-Version`."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from app.artifacts import service as artifacts
from tests.files import conftest as files_tier
from tests.files.conftest import runtime_area, sha256, started_runtime
from tests.support import error_of

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

# The files tier's fixture: what the object store gained during the test.
objects = files_tier.objects

V = {"BCTRL-Version": "2026-10-03"}


async def upload(api, data: bytes, name: str = "a.txt", spaceId=None, **fields):
    params = {"spaceId": spaceId} if spaceId else {}
    response = await api.post("/v1/files", params=params, files={"file": (name, data)}, data=fields, headers=V)
    assert response.status_code == 201, response.text
    return response.json()


async def test_upload_get_update_content_and_delete_in_the_current_words(api, objects):
    made = await upload(api, b"hello", "note.txt", filename="My note", path="docs/note.txt", metadata='{"k": 1}')
    assert made["object"] == "file" and made["filename"] == "My note" and made["path"] == "docs/note.txt"
    assert made["source"] == "upload" and made["type"] is None and made["sizeBytes"] == 5
    assert made["metadata"] == {"k": 1} and made["canDelete"] is True and made["runId"] is None
    assert made["contentType"] == "text/plain" and made["downloadUrl"] == f"/v1/files/{made['id']}/content"

    assert (await api.get(f"/v1/files/{made['id']}", headers=V)).json() == made
    body = await api.get(f"/v1/files/{made['id']}/content", headers=V)
    assert body.content == b"hello" and 'filename="My note"' in body.headers["content-disposition"]

    renamed = await api.patch(f"/v1/files/{made['id']}", json={"filename": "Renamed"}, headers=V)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["filename"] == "Renamed" and renamed.json()["metadata"] == {"k": 1}
    cleared = (await api.patch(f"/v1/files/{made['id']}", json={"metadata": None}, headers=V)).json()
    assert cleared["metadata"] is None and cleared["filename"] == "Renamed"

    gone = await api.delete(f"/v1/files/{made['id']}", headers=V)
    assert gone.json() == {"id": made["id"], "object": "file", "deleted": True}
    assert error_of(await api.get(f"/v1/files/{made['id']}", headers=V), 404)["code"] == "file.not_found"
    assert error_of(await api.delete(f"/v1/files/{made['id']}", headers=V), 404)["reasonClass"] == "not_found"
    assert objects() == set()  # the bytes went with it


async def test_the_flat_routes_of_the_same_path_are_unchanged(api):
    # Without the header, `filename` is still an unknown form field of the flat upload.
    refused = await api.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"filename": "A"})
    assert refused.status_code == 400 and refused.json()["code"] == "request.invalid"
    flat = await api.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"name": "A"})
    assert flat.status_code == 201 and flat.json()["name"] == "A" and "filename" not in flat.json()
    listed = (await api.get("/v1/files")).json()
    assert listed["files"] == listed["data"] and "hasMore" not in listed
    assert error_of(await api.get(f"/v1/files/{uuid.uuid4()}"), 404) == "File not found"


async def test_list_filters_order_pages_and_folders(api):
    space = (await api.post("/v1/spaces", json={"name": f"files-{uuid.uuid4().hex[:6]}"})).json()
    made = [
        await upload(api, b"1" * n, f"f{n}.csv", path=p, spaceId=space["id"])
        for n, p in [(1, "in/a/one.csv"), (2, "in/a/two.csv"), (3, "in/b/three.txt"), (4, "top.csv")]
    ]
    scope = {"spaceId": space["id"]}

    async def ids(**params):
        response = await api.get("/v1/files", params={**scope, **params}, headers=V)
        assert response.status_code == 200, response.text
        return [f["id"] for f in response.json()["data"]]

    newest_first = [f["id"] for f in reversed(made)]
    assert await ids() == newest_first
    assert await ids(order="asc") == newest_first[::-1]
    assert await ids(prefix="in/a/") == [made[1]["id"], made[0]["id"]]
    assert await ids(path="top.csv") == [made[3]["id"]]
    assert await ids(q="THREE") == [made[2]["id"]]
    assert await ids(source="upload") == newest_first and await ids(source="runtime") == []
    assert await ids(type="download") == [] and await ids(runId="not-a-uuid") == []
    assert await ids(createdAfter=made[1]["createdAt"]) == newest_first[:2]
    # The BCTRL-Space header scopes like ?spaceId.
    by_header = await api.get("/v1/files", headers={**V, "BCTRL-Space": space["id"]})
    assert [f["id"] for f in by_header.json()["data"]] == newest_first

    first = (await api.get("/v1/files", params={**scope, "limit": 3}, headers=V)).json()
    assert first["hasMore"] is True and len(first["data"]) == 3
    rest = (await api.get("/v1/files", params={**scope, "limit": 3, "cursor": first["nextCursor"]}, headers=V)).json()
    assert rest["hasMore"] is False and rest["nextCursor"] is None
    assert [f["id"] for f in first["data"] + rest["data"]] == newest_first

    folders = (await api.get("/v1/files", params={**scope, "include": "folders"}, headers=V)).json()["folders"]
    assert folders == [
        {"path": "in/", "segment": "in", "fileCount": 3, "totalBytes": 6, "lastCreatedAt": made[2]["createdAt"]}
    ]
    inner = (await api.get("/v1/files", params={**scope, "include": "folders", "prefix": "in/"}, headers=V)).json()
    assert [(f["segment"], f["fileCount"]) for f in inner["folders"]] == [("a", 2), ("b", 1)]

    bad = error_of(await api.get("/v1/files", params={"order": "sideways"}, headers=V), 400)
    assert bad["code"] == "request.invalid" and bad["reasonClass"] == "invalid_input"
    assert (
        error_of(await api.get("/v1/files", params={"spaceId": str(uuid.uuid4())}, headers=V), 404)["code"]
        == "space.not_found"
    )


async def test_bad_uploads_and_updates_leave_nothing(api, objects):
    cases = [
        ({"path": "../up.txt"}, 400, "storage_file.path_invalid"),
        ({"metadata": "[1]"}, 400, "request.invalid"),
        ({"name": "A"}, 400, "request.invalid"),  # the flat field name is not this generation's
    ]
    for fields, status, code in cases:
        response = await api.post("/v1/files", files={"file": ("a.txt", b"x")}, data=fields, headers=V)
        assert error_of(response, status)["code"] == code, fields
    taken = await upload(api, b"x", "dup.txt")
    again = await api.post("/v1/files", files={"file": ("dup.txt", b"y")}, headers=V)
    assert error_of(again, 409)["code"] == "storage_file.path_exists"
    unknown = await api.post("/v1/files", params={"spaceId": str(uuid.uuid4())}, files={"file": ("a", b"x")}, headers=V)
    assert error_of(unknown, 404)["code"] == "space.not_found"
    patch = await api.patch(f"/v1/files/{taken['id']}", json={"name": "x"}, headers=V)
    assert error_of(patch, 400)["details"]["fields"][0]["field"] == "name"
    assert len(objects()) == 1  # only the one that was made


async def test_what_a_run_records_is_a_file_and_a_run_file(server, api, tmp_path):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        source = tmp_path / "report.csv"
        source.write_bytes(b"id,amount\n1,10\n")
        download = await artifacts.record(
            server.ctx,
            run_id=uuid.UUID(run_id),
            kind="download",
            name="report.csv",
            content_type="text/csv",
            source=source,
        )
        recording = await artifacts.record(
            server.ctx,
            run_id=uuid.UUID(run_id),
            kind="recording",
            name="recording.webm",
            content_type="video/webm",
            source=source,
        )
        files = (await api.get("/v1/files", params={"runId": run_id}, headers=V)).json()["data"]
        by_id = {f["id"]: f for f in files}
        got = by_id[str(download.id)]
        assert got["path"] == f"runs/{run_id}/download/report.csv" and got["type"] == "download"
        assert got["source"] == "runtime" and got["runId"] == run_id and got["canDelete"] is True
        assert by_id[str(recording.id)]["canDelete"] is False
        assert (await api.get(got["downloadUrl"], headers=V)).content == b"id,amount\n1,10\n"
        for prefix in ("ru", "runs/", f"runs/{run_id[:10]}", f"runs/{run_id}/down", f"runs/{run_id}/download/rep"):
            listed = (await api.get("/v1/files", params={"prefix": prefix}, headers=V)).json()["data"]
            assert str(download.id) in [f["id"] for f in listed], prefix
        for prefix in ("runs/zz", f"runs/{run_id}/screenshot/", "run/"):
            listed = (await api.get("/v1/files", params={"prefix": prefix}, headers=V)).json()["data"]
            assert str(download.id) not in [f["id"] for f in listed], prefix
        # `runId` on a read: only that run's files.
        of_run = await api.get(f"/v1/files/{download.id}/content", params={"runId": run_id}, headers=V)
        assert of_run.status_code == 200 and of_run.content == b"id,amount\n1,10\n"
        unrelated = await upload(api, b"u", f"u-{uuid.uuid4().hex[:6]}.txt")
        not_of_run = await api.get(f"/v1/files/{unrelated['id']}", params={"runId": run_id}, headers=V)
        assert error_of(not_of_run, 404)["code"] == "file.not_found"
        no_run = await api.get(f"/v1/files/{download.id}", params={"runId": str(uuid.uuid4())}, headers=V)
        assert error_of(no_run, 404)["code"] == "run.not_found"
        exact = (await api.get("/v1/files", params={"path": got["path"]}, headers=V)).json()["data"]
        assert [f["id"] for f in exact] == [got["id"]]
        assert [
            f["id"] for f in (await api.get("/v1/files", params={"type": "recording"}, headers=V)).json()["data"]
        ] == [str(recording.id)]

        run_files = (await api.get(f"/v1/runs/{run_id}/files", headers=V)).json()
        assert [(f["fileId"], f["role"]) for f in run_files["data"]] == [
            (str(recording.id), "output"),
            (str(download.id), "output"),
        ]
        one = (await api.get(f"/v1/runs/{run_id}/files/{download.id}", headers=V)).json()
        assert one["object"] == "run.file" and one["spacePath"] == got["path"] and one["size"] == 15
        assert one["binding"] is None and one["filename"] == "report.csv"

        renamed = await api.patch(f"/v1/files/{download.id}", json={"filename": "sales.csv"}, headers=V)
        assert renamed.json()["filename"] == "sales.csv"
        meta = await api.patch(f"/v1/files/{download.id}", json={"metadata": {"a": 1}}, headers=V)
        assert error_of(meta, 400)["code"] == "request.invalid"
        refused = error_of(await api.delete(f"/v1/files/{recording.id}", headers=V), 403)
        assert refused["code"] == "file.not_deletable" and refused["reasonClass"] == "capability_denied"
        assert (await api.delete(f"/v1/files/{download.id}", headers=V)).json()["deleted"] is True
        flat_artifacts = (await api.get(f"/v1/runs/{run_id}/artifacts")).json()["data"]
        assert [a["id"] for a in flat_artifacts] == [str(recording.id)]


async def test_a_runs_inputs_and_outputs(server, api):
    data = os.urandom(200_000)
    async with started_runtime(api) as runtime:
        run_id, rid = runtime["activeRunId"], runtime["id"]
        area = runtime_area(server, rid)
        base = f"/v1/runs/{run_id}/files"
        space_file = await upload(api, data, "payload.bin", path="inputs/payload.bin", spaceId=runtime["spaceId"])

        added = await api.post(base, json={"fileId": space_file["id"]}, headers=V)
        assert added.status_code == 201, added.text
        added = added.json()
        assert added["role"] == "input" and added["fileId"] == space_file["id"] and added["size"] == len(data)
        assert added["binding"]["state"] == "ready" and added["binding"]["failure"] is None
        assert added["runtimePath"] == str(area / "inputs/payload.bin") and added["spacePath"] == "inputs/payload.bin"
        assert sha256(Path(added["runtimePath"]).read_bytes()) == sha256(data)
        # Adding it again answers the same binding.
        assert (await api.post(base, json={"fileId": space_file["id"]}, headers=V)).json()["binding"] == added[
            "binding"
        ]

        uploaded = await api.post(f"{base}/upload", files={"file": ("form.pdf", b"%PDF-1")}, headers=V)
        assert uploaded.status_code == 201, uploaded.text
        uploaded = uploaded.json()
        assert uploaded["spacePath"] == "uploads/form.pdf" and uploaded["binding"]["state"] == "ready"
        assert Path(uploaded["runtimePath"]).read_bytes() == b"%PDF-1"

        (area / "out").mkdir(exist_ok=True)
        (area / "out" / "result.json").write_text(json.dumps({"ok": True}))
        collected = await api.post(
            f"{base}/collect", json={"runtimePath": "out/result.json", "filename": "Result"}, headers=V
        )
        assert collected.status_code == 201, collected.text
        collected = collected.json()
        assert collected["role"] == "output" and collected["spacePath"] == "out/result.json"
        assert collected["filename"] == "Result" and collected["binding"] is None
        # An input's absolute runtimePath is understood too.
        again = await api.post(
            f"{base}/collect", json={"runtimePath": uploaded["runtimePath"], "path": "copies/form.pdf"}, headers=V
        )
        assert again.status_code == 201 and again.json()["spacePath"] == "copies/form.pdf"

        listed = (await api.get(base, headers=V)).json()
        roles = {f["fileId"]: f["role"] for f in listed["data"]}
        assert roles[space_file["id"]] == "input" and roles[collected["fileId"]] == "output"
        inputs = (await api.get(base, params={"role": "input"}, headers=V)).json()["data"]
        assert {f["fileId"] for f in inputs} == {space_file["id"], uploaded["fileId"]}
        page = (await api.get(base, params={"limit": 2, "order": "asc"}, headers=V)).json()
        assert page["hasMore"] is True and page["data"][0]["fileId"] == space_file["id"]
        space_view = (await api.get("/v1/files", params={"runId": run_id}, headers=V)).json()["data"]
        assert collected["fileId"] in [f["id"] for f in space_view]

        # A page may change its copy; retry copies it again.
        Path(added["runtimePath"]).write_bytes(b"changed")
        retried = await api.post(f"{base}/{space_file['id']}/retry", headers=V)
        assert retried.status_code == 200 and retried.json()["binding"]["state"] == "ready"
        assert sha256(Path(added["runtimePath"]).read_bytes()) == sha256(data)

        removed = (await api.delete(f"{base}/{space_file['id']}", headers=V)).json()
        assert removed["binding"] is None and removed["runtimePath"] is None
        assert not Path(added["runtimePath"]).exists()
        assert (await api.get(f"/v1/files/{space_file['id']}", headers=V)).status_code == 200  # the space file stays
        assert error_of(await api.get(f"{base}/{space_file['id']}", headers=V), 404)["code"] == "file.not_found"

        # Errors, in the current envelope.
        output = error_of(await api.delete(f"{base}/{collected['fileId']}", headers=V), 409)
        assert output["code"] == "resource.conflict"
        assert (
            error_of(await api.post(f"{base}/{collected['fileId']}/retry", headers=V), 409)["code"]
            == "resource.conflict"
        )
        missing = await api.post(f"{base}/collect", json={"runtimePath": "nothing.txt"}, headers=V)
        assert error_of(missing, 404)["code"] == "runtime_file.not_found"
        escape = await api.post(f"{base}/collect", json={"runtimePath": "../../etc/passwd"}, headers=V)
        assert error_of(escape, 400)["code"] == "runtime_file.path_invalid"
        exists = await api.post(f"{base}/collect", json={"runtimePath": "out/result.json"}, headers=V)
        assert error_of(exists, 409)["code"] == "storage_file.path_exists"
        unknown = await api.post(base, json={"fileId": str(uuid.uuid4())}, headers=V)
        assert error_of(unknown, 404)["code"] == "file.not_found"
        assert error_of(await api.post(base, json={}, headers=V), 400)["code"] == "request.invalid"
        other_space = (await api.post("/v1/spaces", json={"name": f"other-{uuid.uuid4().hex[:6]}"})).json()
        elsewhere = await upload(api, b"z", "z.txt", spaceId=other_space["id"])
        assert (
            error_of(await api.post(base, json={"fileId": elsewhere["id"]}, headers=V), 404)["code"] == "file.not_found"
        )
        ghost = f"/v1/runs/{uuid.uuid4()}/files"
        assert error_of(await api.get(ghost, headers=V), 404)["code"] == "run.not_found"

        await api.post(f"/v1/runtimes/{rid}/stop")
        ended = await api.post(base, json={"fileId": space_file["id"]}, headers=V)
        assert error_of(ended, 409)["code"] == "run.not_active"
        late = await api.post(f"{base}/upload", files={"file": ("late.txt", b"x")}, headers=V)
        assert error_of(late, 409)["code"] == "run.not_active"
        assert (
            error_of(await api.post(f"{base}/{uploaded['fileId']}/retry", headers=V), 409)["code"] == "run.not_active"
        )
        # Still readable after the run: its files, with the bindings it had.
        after = (await api.get(base, headers=V)).json()["data"]
        assert uploaded["fileId"] in [f["fileId"] for f in after]

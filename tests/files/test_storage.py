"""Space storage over HTTP: uploads stream into the object store, downloads serve exact bytes and headers."""

from __future__ import annotations

import os

import pytest

from tests.files.conftest import sha256

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

TRAVERSALS = ["../x", "/etc/passwd", "a/../../b", "a//b", ".", "..", "a/./b", "a\\b", "x/", "a/\x00b"]


async def new_space(api, name: str = "work") -> str:
    created = await api.post("/v1/spaces", json={"name": name})
    assert created.status_code == 201
    return created.json()["id"]


async def upload(
    api, space_id: str, data: bytes, filename: str = "report.txt", content_type: str = "text/plain", **fields
):
    return await api.post(
        f"/v1/spaces/{space_id}/storage/files", files={"file": (filename, data, content_type)}, data=fields
    )


async def test_upload_and_download_round_trip(server, api, objects):
    space_id = await new_space(api)
    data = os.urandom(300_000)
    created = await upload(
        api,
        space_id,
        data,
        filename="raw.bin",
        content_type="application/x-custom",
        path="inputs/2026/raw.bin",
        name="Raw data",
        metadata='{"job": 7}',
    )
    assert created.status_code == 201, created.text
    f = created.json()
    assert f["path"] == "inputs/2026/raw.bin" and f["name"] == "Raw data" and f["spaceId"] == space_id
    assert f["sizeBytes"] == len(data) and f["contentType"] == "application/x-custom"
    assert f["metadata"] == {"job": 7} and f["status"] == "ready" and f["source"] == "upload"
    assert f["runId"] is None and f["runtimeId"] is None and f["expiresAt"] is None
    assert f["downloadUrl"] == f"/v1/files/{f['id']}/content"
    assert len(objects()) == 1

    assert (await api.get(f"/v1/spaces/{space_id}/storage/files/{f['id']}")).json() == f
    listed = (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()
    assert [x["id"] for x in listed["files"]] == [f["id"]] == [x["id"] for x in listed["data"]]
    assert listed["nextCursor"] is None

    for url in (f"/v1/spaces/{space_id}/storage/files/{f['id']}/content", f["downloadUrl"]):
        got = await api.get(url)
        assert got.status_code == 200
        assert got.content == data and sha256(got.content) == sha256(data)
        assert got.headers["content-type"] == "application/x-custom"
        assert got.headers["content-length"] == str(len(data))
        assert got.headers["accept-ranges"] == "bytes"
        assert got.headers["content-disposition"] == "attachment; filename=\"Raw data\"; filename*=UTF-8''Raw%20data"
        assert got.headers["etag"] == f'"{sha256(data)}"'


async def test_defaults_come_from_the_file_name(server, api):
    space_id = await new_space(api)
    f = await upload(api, space_id, b"a,b\n1,2\n", filename="table.csv", content_type="application/octet-stream")
    assert f.status_code == 201, f.text
    f = f.json()
    assert f["path"] == "table.csv" and f["name"] == "table.csv" and f["contentType"] == "text/csv"
    assert f["metadata"] is None

    named = (await upload(api, space_id, b"x", path="deep/dir/notes.md")).json()
    assert named["name"] == "notes.md"


async def test_non_ascii_names_use_rfc6266_filename_star(server, api):
    space_id = await new_space(api)
    f = (
        await upload(
            api,
            space_id,
            b"%PDF-1.4",
            filename="x.pdf",
            content_type="application/pdf",
            path="cv/résumé.pdf",
            name='résumé "final" 2026.pdf',
        )
    ).json()
    got = await api.get(f["downloadUrl"])
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_ _final_ 2026.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%202026.pdf"
    )


async def test_range_requests(server, api):
    space_id = await new_space(api)
    data = bytes(range(256)) * 40  # 10240 bytes
    f = (await upload(api, space_id, data, filename="r.bin", content_type="application/octet-stream")).json()
    url = f["downloadUrl"]

    first = await api.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert first.headers["content-length"] == "100"

    middle = await api.get(url, headers={"Range": "bytes=5000-"})
    assert middle.status_code == 206 and middle.content == data[5000:]
    assert middle.headers["content-range"] == f"bytes 5000-{len(data) - 1}/{len(data)}"

    suffix = await api.get(url, headers={"Range": "bytes=-16"})
    assert suffix.status_code == 206 and suffix.content == data[-16:]

    past_end = await api.get(url, headers={"Range": "bytes=10000-99999"})
    assert past_end.status_code == 206 and past_end.content == data[10000:]

    outside = await api.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(data)}"
    assert outside.json()["code"] == "request.range_not_satisfiable"

    several = await api.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == data

    stale = await api.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = await api.get(url, headers={"Range": "bytes=0-9", "If-Range": first.headers["etag"]})
    assert fresh.status_code == 206 and fresh.content == data[:10]


@pytest.mark.parametrize("bad", TRAVERSALS)
async def test_bad_paths_are_refused_and_leave_nothing(server, api, objects, bad):
    space_id = await new_space(api)
    refused = await upload(api, space_id, b"secret", path=bad)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "storage_file.path_invalid"
    assert (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()["data"] == []
    assert objects() == set()


async def test_file_name_with_traversal_is_not_a_path(server, api, objects):
    space_id = await new_space(api)
    # A file part's name is reduced to its last segment, never used as a path.
    f = await upload(api, space_id, b"x", filename="../../etc/passwd")
    assert f.status_code == 201 and f.json()["path"] == "passwd"
    refused = await upload(api, space_id, b"x", filename="..")
    assert refused.status_code == 400
    assert len(objects()) == 1


async def test_existing_path_is_a_conflict(server, api, objects):
    space_id = await new_space(api)
    assert (await upload(api, space_id, b"one", path="same.txt")).status_code == 201
    again = await upload(api, space_id, b"two", path="same.txt")
    assert again.status_code == 409 and again.json()["code"] == "storage_file.path_exists"
    listed = (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()["data"]
    assert len(listed) == 1
    assert (await api.get(listed[0]["downloadUrl"])).content == b"one"
    assert len(objects()) == 1
    # The same path in another space is another file.
    other = await new_space(api, "other")
    assert (await upload(api, other, b"two", path="same.txt")).status_code == 201


async def test_oversize_upload_is_413_and_leaves_nothing(server, api, objects, monkeypatch):
    monkeypatch.setattr(server.settings, "max_upload_bytes", 64 * 1024)
    space_id = await new_space(api)
    refused = await upload(api, space_id, os.urandom(64 * 1024 + 1), filename="big.bin")
    assert refused.status_code == 413 and refused.json()["code"] == "request.too_large"
    assert refused.json()["details"]["maxBytes"] == 64 * 1024
    assert (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()["data"] == []
    assert objects() == set()
    exact = await upload(api, space_id, os.urandom(64 * 1024), filename="fits.bin")
    assert exact.status_code == 201


async def test_uploads_are_not_bound_by_the_json_body_limit(server, api):
    assert server.settings.max_body_bytes < 3 * 1024 * 1024
    space_id = await new_space(api)
    data = os.urandom(3 * 1024 * 1024)
    f = await upload(api, space_id, data, filename="big.bin")
    assert f.status_code == 201, f.text
    assert sha256((await api.get(f.json()["downloadUrl"])).content) == sha256(data)
    # Other routes keep the JSON body limit.
    huge = await api.patch(f"/v1/files/{f.json()['id']}", json={"metadata": {"x": "y" * (2 * 1024 * 1024)}})
    assert huge.status_code == 413


@pytest.mark.parametrize(
    "fields,files,code",
    [
        ({"path": "a.txt"}, None, "request.invalid"),
        ({"path": "a.txt", "unknown": "1"}, {"file": ("a.txt", b"x")}, "request.invalid"),
        ({"metadata": "[1, 2]"}, {"file": ("a.txt", b"x")}, "request.invalid"),
        ({"metadata": "{not json"}, {"file": ("a.txt", b"x")}, "request.invalid"),
        ({"name": "x" * 256}, {"file": ("a.txt", b"x")}, "request.invalid"),
        ({}, {"file": ("a.txt", b"x"), "other": ("b.txt", b"y")}, "request.invalid"),
    ],
)
async def test_invalid_forms_leave_nothing(server, api, objects, fields, files, code):
    space_id = await new_space(api)
    if files is None:
        refused = await api.post(
            f"/v1/spaces/{space_id}/storage/files", data=fields, files={"not_file": ("a.txt", b"x")}
        )
    else:
        refused = await api.post(f"/v1/spaces/{space_id}/storage/files", data=fields, files=files)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == code
    assert objects() == set()
    assert (await api.get(f"/v1/spaces/{space_id}/storage/files")).json()["data"] == []


async def test_json_body_is_refused(server, api):
    space_id = await new_space(api)
    refused = await api.post(f"/v1/spaces/{space_id}/storage/files", json={"path": "a"})
    assert refused.status_code == 400 and refused.json()["code"] == "request.invalid"


async def test_update_and_delete(server, api, objects):
    space_id = await new_space(api)
    f = (await upload(api, space_id, b"abc", path="a/b.txt", metadata='{"v": 1}')).json()
    base = f"/v1/spaces/{space_id}/storage/files/{f['id']}"

    renamed = await api.patch(base, json={"name": "  Better name.txt  "})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Better name.txt" and renamed.json()["metadata"] == {"v": 1}
    assert renamed.json()["path"] == "a/b.txt"
    cleared = (await api.patch(base, json={"metadata": None})).json()
    assert cleared["metadata"] is None and cleared["name"] == "Better name.txt"
    assert (await api.patch(base, json={"path": "elsewhere"})).status_code == 400
    assert (await api.patch(base, json={"name": ""})).status_code == 400
    got = await api.get(f"{base}/content")
    assert got.headers["content-disposition"].startswith('attachment; filename="Better name.txt"')

    deleted = await api.delete(base)
    assert deleted.status_code == 200 and deleted.json() == {"id": f["id"], "deleted": True}
    assert objects() == set()
    for response in (await api.get(base), await api.get(f"{base}/content"), await api.delete(base)):
        assert response.status_code == 404 and response.json()["code"] == "file.not_found"
    # The path is free again.
    assert (await upload(api, space_id, b"new", path="a/b.txt")).status_code == 201


async def test_list_prefix_and_paging(server, api):
    space_id = await new_space(api)
    for path in ("a/1.txt", "a/2.txt", "b/3.txt", "a%/4.txt", "a_b/5.txt"):
        assert (await upload(api, space_id, b"x", path=path)).status_code == 201
    base = f"/v1/spaces/{space_id}/storage/files"
    paths = [f["path"] for f in (await api.get(base, params={"prefix": "a/"})).json()["files"]]
    assert paths == ["a/1.txt", "a/2.txt"]
    # LIKE wildcards in a prefix are matched literally.
    assert [f["path"] for f in (await api.get(base, params={"prefix": "a%"})).json()["files"]] == ["a%/4.txt"]
    assert [f["path"] for f in (await api.get(base, params={"prefix": "a_"})).json()["files"]] == ["a_b/5.txt"]

    first = (await api.get(base, params={"limit": 2})).json()
    assert [f["path"] for f in first["data"]] == ["a/1.txt", "a/2.txt"] and first["nextCursor"]
    second = (await api.get(base, params={"limit": 2, "cursor": first["nextCursor"]})).json()
    assert [f["path"] for f in second["data"]] == ["b/3.txt", "a%/4.txt"]
    third = (await api.get(base, params={"limit": 2, "cursor": second["nextCursor"]})).json()
    assert [f["path"] for f in third["data"]] == ["a_b/5.txt"] and third["nextCursor"] is None


async def test_flat_routes_default_to_the_default_space(server, api):
    created = await api.post(
        "/v1/files", files={"file": ("notes.txt", b"flat", "text/plain")}, data={"path": "flat/notes.txt"}
    )
    assert created.status_code == 201, created.text
    f = created.json()
    default = (await api.get("/v1/spaces/default")).json()
    assert f["spaceId"] == default["id"]
    assert [x["id"] for x in (await api.get("/v1/files")).json()["data"]] == [f["id"]]

    space_id = await new_space(api)
    in_query = (await api.post("/v1/files", params={"spaceId": space_id}, files={"file": ("q.txt", b"q")})).json()
    in_form = (await api.post("/v1/files", data={"spaceId": space_id}, files={"file": ("f.txt", b"f")})).json()
    assert in_query["spaceId"] == in_form["spaceId"] == space_id
    listed = (await api.get("/v1/files", params={"spaceId": space_id})).json()["data"]
    assert sorted(x["path"] for x in listed) == ["f.txt", "q.txt"]

    assert (await api.get(f"/v1/files/{f['id']}")).json()["path"] == "flat/notes.txt"
    assert (await api.get(f"/v1/files/{f['id']}/content")).content == b"flat"
    assert (await api.patch(f"/v1/files/{f['id']}", json={"name": "n"})).json()["name"] == "n"
    # Seed routes see the same file, but only under its own space.
    assert (await api.get(f"/v1/spaces/{default['id']}/storage/files/{f['id']}")).status_code == 200
    assert (await api.get(f"/v1/spaces/{space_id}/storage/files/{f['id']}")).status_code == 404
    assert (await api.delete(f"/v1/files/{f['id']}")).status_code == 200
    assert (await api.get(f"/v1/files/{f['id']}")).status_code == 404

    unknown = await api.post(
        "/v1/files", params={"spaceId": "0190a000-0000-7000-8000-000000000000"}, files={"file": ("q.txt", b"q")}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "space.not_found"


async def test_flat_upload_into_an_unknown_form_space_keeps_nothing(api, objects):
    # The form's spaceId is read with the body: the bytes are already stored when it proves unknown.
    unknown = await api.post(
        "/v1/files", data={"spaceId": "0190a000-0000-7000-8000-000000000000"}, files={"file": ("f.txt", b"f")}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "space.not_found"
    assert objects() == set()


async def test_idempotent_upload_replays(server, api, objects):
    space_id = await new_space(api)
    headers = {"Idempotency-Key": "upload-1"}
    first = await api.post(
        f"/v1/spaces/{space_id}/storage/files",
        headers=headers,
        files={"file": ("a.txt", b"same")},
        data={"path": "a.txt"},
    )
    again = await api.post(
        f"/v1/spaces/{space_id}/storage/files",
        headers=headers,
        files={"file": ("a.txt", b"same")},
        data={"path": "a.txt"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("idempotency-replayed") == "true"
    assert len(objects()) == 1


async def test_another_accounts_files_are_404(server, api, objects):
    space_id = await new_space(api)
    f = (await upload(api, space_id, b"mine", path="mine.txt")).json()
    async with await server.client("intruder") as other:
        for response in (
            await other.get(f"/v1/files/{f['id']}"),
            await other.get(f"/v1/files/{f['id']}/content"),
            await other.patch(f"/v1/files/{f['id']}", json={"name": "x"}),
            await other.delete(f"/v1/files/{f['id']}"),
        ):
            assert response.status_code == 404 and response.json()["code"] == "file.not_found"
        for response in (
            await other.get(f"/v1/spaces/{space_id}/storage/files"),
            await other.get(f"/v1/spaces/{space_id}/storage/files/{f['id']}/content"),
            await other.post(f"/v1/spaces/{space_id}/storage/files", files={"file": ("x.txt", b"x")}),
        ):
            assert response.status_code == 404 and response.json()["code"] == "space.not_found"
        other_space = (await other.post("/v1/spaces", json={"name": "theirs"})).json()["id"]
        assert (await other.get(f"/v1/spaces/{other_space}/storage/files/{f['id']}")).status_code == 404
        assert (await other.get("/v1/files")).json()["data"] == []
    assert (await api.get(f["downloadUrl"])).content == b"mine"
    assert len(objects()) == 1
    assert (await api.get("/v1/files/not-a-uuid")).json()["code"] == "file.not_found"

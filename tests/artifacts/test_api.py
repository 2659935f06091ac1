"""Run artifacts: recorded by the server's machinery, listed newest first, bytes served with exact headers."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from app.artifacts import service as artifacts
from app.core.errors import DomainError
from tests.support import started_runtime

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


def stored_objects(server) -> set[str]:
    root = server.settings.objects_dir
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def record(
    server,
    tmp_path,
    run_id: str,
    data: bytes,
    *,
    kind: str = "download",
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
    **kw,
):
    source = tmp_path / uuid.uuid4().hex
    source.write_bytes(data)
    artifact = await artifacts.record(
        server.ctx, run_id=uuid.UUID(run_id), kind=kind, name=name, content_type=content_type, source=source, **kw
    )
    assert source.read_bytes() == data, "the source is left to its owner"
    return artifact


async def test_record_list_get_and_download(server, api, tmp_path):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        before = stored_objects(server)
        csv = await record(
            server,
            tmp_path,
            run_id,
            b"a,b\n1,2\n",
            name="report.csv",
            content_type="text/csv",
            path="/downloads/report.csv",
            metadata={"url": "https://example.test/r.csv"},
        )
        png = await record(
            server,
            tmp_path,
            run_id,
            b"\x89PNG" + bytes(500),
            kind="screenshot",
            name="shot.png",
            content_type="image/png",
        )
        assert len(stored_objects(server) - before) == 2

        listed = (await api.get(f"/v1/runs/{run_id}/artifacts")).json()
        assert [a["id"] for a in listed["artifacts"]] == [str(png.id), str(csv.id)]  # newest first
        assert listed["data"] == listed["artifacts"] and listed["nextCursor"] is None
        one = listed["artifacts"][1]
        assert one == {
            "id": str(csv.id),
            "runId": run_id,
            "runtimeId": runtime["id"],
            "runtimeKind": "browser",
            "kind": "download",
            "name": "report.csv",
            "fileId": None,
            "path": "/downloads/report.csv",
            "contentType": "text/csv",
            "sizeBytes": 8,
            "createdAt": one["createdAt"],
            "downloadUrl": f"/v1/runs/{run_id}/artifacts/{csv.id}/content",
            "metadata": {"url": "https://example.test/r.csv"},
        }
        assert (await api.get(f"/v1/runs/{run_id}/artifacts/{csv.id}")).json() == one

        got = await api.get(one["downloadUrl"])
        assert got.status_code == 200 and got.content == b"a,b\n1,2\n"
        assert got.headers["content-type"] == "text/csv"
        assert got.headers["content-length"] == "8"
        assert got.headers["content-disposition"] == "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
        assert got.headers["accept-ranges"] == "bytes"
        assert got.headers["etag"] == f'"{hashlib.sha256(b"a,b" + bytes([10]) + b"1,2" + bytes([10])).hexdigest()}"'

        part = await api.get(one["downloadUrl"], headers={"Range": "bytes=4-6"})
        assert part.status_code == 206 and part.content == b"1,2"
        assert part.headers["content-range"] == "bytes 4-6/8" and part.headers["content-length"] == "3"
        outside = await api.get(one["downloadUrl"], headers={"Range": "bytes=8-"})
        assert outside.status_code == 416 and outside.headers["content-range"] == "bytes */8"

        events = (await api.get(f"/v1/runs/{run_id}/events", params={"type": "artifact.created"})).json()["data"]
        assert [e["data"]["artifactId"] for e in events] == [str(csv.id), str(png.id)]
        assert {e["category"] for e in events} == {"artifact"}
        assert events[0]["data"]["kind"] == "download" and events[0]["data"]["sizeBytes"] == 8


async def test_kind_filter_and_paging(server, api, tmp_path):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        made = [
            await record(server, tmp_path, run_id, bytes([i]), kind=kind, name=f"{i}")
            for i, kind in enumerate(["download", "screenshot", "download", "report"])
        ]
        base = f"/v1/runs/{run_id}/artifacts"
        downloads = (await api.get(base, params={"kind": "download"})).json()["data"]
        assert [a["id"] for a in downloads] == [str(made[2].id), str(made[0].id)]
        both = (await api.get(base, params=[("kind[]", "screenshot"), ("kind[]", "report")])).json()["data"]
        assert [a["id"] for a in both] == [str(made[3].id), str(made[1].id)]
        mixed = (await api.get(base, params=[("kind", "screenshot"), ("kind[]", "report")])).json()["data"]
        assert len(mixed) == 2
        # A kind no artifact can have is a mistake worth naming, not an empty page.
        unknown = await api.get(base, params={"kind": "downloads"})
        assert unknown.status_code == 400 and unknown.json()["code"] == "request.invalid"
        assert unknown.json()["details"]["fields"][0]["field"].startswith("query.kind")

        seen, cursor = [], None
        while True:
            page = (await api.get(base, params={"limit": 3, **({"cursor": cursor} if cursor else {})})).json()
            seen += [a["id"] for a in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == [str(a.id) for a in reversed(made)]


async def test_space_artifacts_with_runtime_filter(server, api, tmp_path):
    space_id = (await api.post("/v1/spaces", json={"name": "w"})).json()["id"]
    async with started_runtime(api, spaceId=space_id) as first, started_runtime(api, spaceId=space_id) as second:
        a = await record(server, tmp_path, first["activeRunId"], b"a")
        b = await record(server, tmp_path, second["activeRunId"], b"b")
        listed = (await api.get(f"/v1/spaces/{space_id}/artifacts")).json()
        assert [x["id"] for x in listed["artifacts"]] == [str(b.id), str(a.id)]
        only = (await api.get(f"/v1/spaces/{space_id}/artifacts", params={"runtimeId": first["id"]})).json()
        assert [x["id"] for x in only["data"]] == [str(a.id)]
        assert (await api.get(f"/v1/spaces/{space_id}/artifacts", params={"runtimeId": "nope"})).json()["data"] == []
        other_space = (await api.post("/v1/spaces", json={"name": "empty"})).json()["id"]
        assert (await api.get(f"/v1/spaces/{other_space}/artifacts")).json()["data"] == []


async def test_another_accounts_artifacts_are_404(server, api, tmp_path):
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        mine = await record(server, tmp_path, run_id, b"mine")
        async with await server.client("intruder") as other:
            for url in (
                f"/v1/runs/{run_id}/artifacts",
                f"/v1/runs/{run_id}/artifacts/{mine.id}",
                f"/v1/runs/{run_id}/artifacts/{mine.id}/content",
            ):
                response = await other.get(url)
                assert response.status_code == 404 and response.json()["code"] == "run.not_found"
            response = await other.get(f"/v1/spaces/{runtime['spaceId']}/artifacts")
            assert response.status_code == 404 and response.json()["code"] == "space.not_found"
            async with started_runtime(other) as theirs:
                # Their own run, but my artifact id.
                response = await other.get(f"/v1/runs/{theirs['activeRunId']}/artifacts/{mine.id}/content")
                assert response.status_code == 404 and response.json()["code"] == "artifact.not_found"
        for bad in ("not-a-uuid", str(uuid.uuid4())):
            response = await api.get(f"/v1/runs/{run_id}/artifacts/{bad}")
            assert response.status_code == 404 and response.json()["code"] == "artifact.not_found"


async def test_record_refusals_leave_nothing(server, api, tmp_path):
    async with started_runtime(api) as runtime:
        before = stored_objects(server)
        with pytest.raises(DomainError) as unknown_run:
            await record(server, tmp_path, str(uuid.uuid4()), b"x")
        assert unknown_run.value.code == "run.not_found"
        with pytest.raises(DomainError) as bad_kind:
            await record(server, tmp_path, runtime["activeRunId"], b"x", kind="mystery")
        assert bad_kind.value.code == "request.invalid"
        assert stored_objects(server) == before
        assert (await api.get(f"/v1/runs/{runtime['activeRunId']}/artifacts")).json()["data"] == []

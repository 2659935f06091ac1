"""Bad input is a 400 naming the field on both backends, never a 500, and nothing is stored (issue 11, items 6-7)."""

from __future__ import annotations

import base64
import uuid

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

NUL = "a\u0000b"


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert body["code"] == "request.invalid", body
    assert field in [f["field"] for f in body["details"]["fields"]], body


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": NUL}, "name"),
        ({"name": "x", "region": NUL}, "region"),
        ({"name": "x", "metadata": {"k": NUL}}, "metadata.k"),
        ({"name": "x", "metadata": {"a": {"b": [1, NUL]}}}, "metadata.a.b.1"),
        ({"name": "x", "metadata": {NUL: 1}}, "metadata.a\\u0000b"),
        ({"name": "x", "mounts": {"vault": {"allow": [NUL]}}}, "mounts.vault.allow.0"),
    ],
)
async def test_nul_in_a_body_is_refused_and_nothing_stored(api, body, field):
    before = (await api.get("/v1/spaces", params={"limit": 200})).json()["data"]
    refused(await api.post("/v1/spaces", json=body), field)
    assert (await api.get("/v1/spaces", params={"limit": 200})).json()["data"] == before


async def test_nul_in_runtime_ai_and_file_bodies(api):
    runtime = (await api.post("/v1/runtimes", json={"name": "r"})).json()
    refused(await api.post("/v1/runtimes", json={"name": NUL}), "name")
    refused(await api.patch(f"/v1/runtimes/{runtime['id']}", json={"metadata": {"x": [NUL]}}), "metadata.x.0")
    assert (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["metadata"] is None
    refused(await api.post("/v1/ai-connections", json={"label": NUL, "provider": "openai", "apiKey": "k"}), "label")
    assert (await api.get("/v1/ai-connections")).json()["data"] == []
    upload = await api.post("/v1/files", files={"file": ("f.txt", b"hi")}, data={"metadata": '{"k": "a\\u0000b"}'})
    refused(upload, "metadata.k")
    assert (await api.get("/v1/files")).json()["data"] == []


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v1/runs", {"spaceId": NUL}, "spaceId"),
        ("/v1/runtimes", {"spaceId": NUL}, "spaceId"),
        ("/v1/files", {"prefix": NUL}, "prefix"),
    ],
)
async def test_nul_in_a_query_parameter_is_refused(api, path, params, field):
    refused(await api.get(path, params=params), field)


@pytest.mark.parametrize("raw", ["18446744073709551616", "9223372036854775808", "-9223372036854775809"])
async def test_integers_beyond_64_bits_in_metadata_are_refused(api, raw):
    body = '{"name": "x", "metadata": {"a": [{"n": ' + raw + "}]}}"
    response = await api.post("/v1/spaces", content=body, headers={"content-type": "application/json"})
    refused(response, "metadata.a.0.n")
    ok = await api.post(
        "/v1/spaces",
        content='{"name": "x", "metadata": {"n": 9223372036854775807}}',
        headers={"content-type": "application/json"},
    )
    assert ok.status_code == 201 and ok.json()["metadata"] == {"n": 2**63 - 1}


async def test_crafted_cursors_are_400_on_lists_waits_and_streams(api):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    run = runtime["activeRunId"]
    try:
        for crafted in (
            cursor_of('{"a": true}'),
            cursor_of(f'{{"a": {2**63}}}'),
            cursor_of('{"a": 1.5}'),
            cursor_of('{"a": -1}'),
            cursor_of("junk"),
            "bm90LWpzb24",
        ):
            for path in (
                f"/v1/runs/{run}/events",
                f"/v1/runs/{run}/commands",
                f"/v1/runs/{run}/activity",
                "/v1/spaces",
                f"/v1/runtimes/{runtime['id']}/files",
            ):
                refused(await api.get(path, params={"cursor": crafted}), "cursor")
            waited = await api.post(f"/v1/runs/{run}/events/wait", json={"cursor": crafted, "timeoutMs": 0})
            assert waited.status_code == 400 and waited.json()["code"] == "request.invalid"
            # The stream is refused before its 200, not cut after it.
            for stream in (f"/v1/runs/{run}/events/stream", f"/v1/runs/{run}/stream"):
                refused(await api.get(stream, params={"cursor": crafted}), "cursor")
                assert (await api.get(stream, headers={"Last-Event-ID": crafted})).status_code == 400
    finally:
        await api.post(f"/v1/runtimes/{runtime['id']}/stop")


async def test_runtime_file_paths_beyond_name_max_and_directories(api):
    space = (await api.get("/v1/auth/whoami")).json()["defaultSpaceId"]
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    rid = runtime["id"]
    try:
        uploaded = (await api.post(f"/v1/spaces/{space}/storage/files", files={"file": ("f.txt", b"hi")})).json()
        for bad in ("a" * 256, "dir/" + "é" * 128):
            response = await api.post(
                f"/v1/runtimes/{rid}/files/stage", json={"fileId": uploaded["id"], "runtimePath": bad}
            )
            assert response.status_code == 400 and response.json()["code"] == "runtime_file.path_invalid"
            response = await api.post(f"/v1/runtimes/{rid}/files/collect", json={"runtimePath": bad})
            assert response.status_code == 400 and response.json()["code"] == "runtime_file.path_invalid"
        staged = await api.post(
            f"/v1/runtimes/{rid}/files/stage", json={"fileId": uploaded["id"], "runtimePath": "dir/inner.txt"}
        )
        assert staged.status_code == 201
        collected = await api.post(f"/v1/runtimes/{rid}/files/collect", json={"runtimePath": "dir"})
        assert collected.status_code == 400, collected.text
        assert collected.json()["code"] == "runtime_file.path_invalid"
        assert collected.json()["details"]["field"] == "runtimePath"
        assert [f["path"] for f in (await api.get(f"/v1/spaces/{space}/storage/files")).json()["data"]] == ["f.txt"]
    finally:
        await api.post(f"/v1/runtimes/{rid}/stop")


async def test_patch_keeps_every_field_it_was_given(api):
    runtime = (await api.post("/v1/runtimes", json={"name": "p"})).json()
    assert runtime["idleTimeoutSeconds"] is None
    patched = await api.patch(f"/v1/runtimes/{runtime['id']}", json={"idleTimeoutSeconds": 60})
    assert patched.status_code == 200 and patched.json()["idleTimeoutSeconds"] == 60
    assert (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["idleTimeoutSeconds"] == 60
    cleared = await api.patch(f"/v1/runtimes/{runtime['id']}", json={"idleTimeoutSeconds": None})
    assert cleared.json()["idleTimeoutSeconds"] is None


async def test_malformed_json_says_what_and_where(api):
    response = await api.post(
        "/v1/spaces", content=b'{"name": "x"\n "y": 1}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "request.invalid"
    assert body["error"] == "Malformed JSON at line 2 column 2: Expecting ',' delimiter", body
    assert [f["field"] for f in body["details"]["fields"]] == ["body"]


async def test_waits_over_the_maximum_are_clamped_and_say_so(api):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    run = runtime["activeRunId"]
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    after_first = (await api.get(f"/v1/runs/{run}/events", params={"limit": 1})).json()["nextCursor"]
    # An event is already there after the cursor, so the wait answers at once; the ask was over 120 s.
    waited = await api.post(f"/v1/runs/{run}/events/wait", json={"timeoutMs": 500_000, "cursor": after_first})
    assert waited.status_code == 200, waited.text
    body = waited.json()
    assert body["event"]["seq"] == 2 and body["timeoutMs"] == 120_000 and body["timeoutClamped"] is True
    plain = (await api.post(f"/v1/runs/{run}/events/wait", json={"timeoutMs": 10, "cursor": after_first})).json()
    assert plain["timeoutMs"] == 10 and plain["timeoutClamped"] is False
    # Over the invocation wait's 60 s is no longer refused: the invocation itself is looked up (404 here).
    response = await api.post(f"/v1/invocations/{uuid.uuid4()}/wait", json={"timeoutMs": 90_000})
    assert response.status_code == 404, response.text


async def test_activity_says_truncated_when_more_items_follow(api):
    runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
    run = runtime["activeRunId"]
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    await api.post(f"/v1/runtimes/{runtime['id']}/start")
    await api.post(f"/v1/runtimes/{runtime['id']}/stop")
    whole = (await api.get(f"/v1/runs/{run}/activity", params={"limit": 200})).json()
    assert whole["nextCursor"] is None and whole["truncated"] is False and len(whole["data"]) >= 2
    first = (await api.get(f"/v1/runs/{run}/activity", params={"limit": 1})).json()
    assert len(first["data"]) == 1 and first["nextCursor"] and first["truncated"] is True


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v1/spaces", {"limt": "2"}, "limt"),
        ("/v1/runtimes", {"stauts": "active"}, "stauts"),
        ("/v1/runs", {"runtimeID": "x"}, "runtimeID"),
        ("/v1/files", {"prefx": "a"}, "prefx"),
    ],
)
async def test_unknown_query_parameters_are_refused(api, path, params, field):
    refused(await api.get(path, params=params), field)


async def test_declared_aliases_still_work(api):
    assert (await api.get("/v1/runtimes", params=[("status[]", "active"), ("limit", "5")])).status_code == 200
    assert (await api.get("/v1/runs", params={"status": "active", "spaceId": "default"})).status_code == 200


async def test_strict_integers_and_booleans(api):
    runtime = (await api.post("/v1/runtimes", json={"name": "s"})).json()
    for body, field in (
        ({"idleTimeoutSeconds": "600"}, "idleTimeoutSeconds"),
        ({"recording": 0}, "recording"),
        ({"recording": "true"}, "recording"),
        ({"idleTimeoutSeconds": 600.5}, "idleTimeoutSeconds"),
    ):
        refused(await api.patch(f"/v1/runtimes/{runtime['id']}", json=body), field)
    refused(await api.post("/v1/runtimes", json={"start": 0}), "start")
    assert (await api.get(f"/v1/runtimes/{runtime['id']}")).json()["idleTimeoutSeconds"] is None
    for value in ("1.5", "+5", "five"):
        refused(await api.get("/v1/spaces", params={"limit": value}), "limit")
    for value in ("yes", "1", "True"):
        refused(await api.delete(f"/v1/runtimes/{runtime['id']}", params={"force": value}), "force")
    assert (await api.get("/v1/spaces", params={"limit": "5"})).status_code == 200
    assert (await api.delete(f"/v1/runtimes/{runtime['id']}", params={"force": "false"})).status_code == 200


async def test_a_whole_float_is_an_integer_as_json_schema_counts_it(api):
    # json.dumps(600.0) is "600.0": a client that computes a timeout in floats must not get a 400.
    runtime = (await api.post("/v1/runtimes", json={"name": "w"})).json()
    patched = await api.patch(
        f"/v1/runtimes/{runtime['id']}",
        content=b'{"idleTimeoutSeconds": 600.0}',
        headers={"content-type": "application/json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["idleTimeoutSeconds"] == 600
    refused(await api.patch(f"/v1/runtimes/{runtime['id']}", json={"idleTimeoutSeconds": 1e30}), "idleTimeoutSeconds")


async def test_the_description_says_what_bodies_and_queries_may_hold(api):
    schema = (await api.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    name = components["SpaceCreate"]["properties"]["name"]
    assert {"pattern": "^[^\\u0000]*$"} in name["allOf"], name
    ttl = components["ConnectionCreate"]["properties"]["ttlSeconds"]
    assert ttl["maximum"] <= 2**63 - 1
    prefix = next(p for p in schema["paths"]["/v1/files"]["get"]["parameters"] if p["name"] == "prefix")
    assert {"type": "string", "maxLength": 4096, "pattern": "^[^\\u0000]*$"} in prefix["schema"]["anyOf"], prefix


def test_an_export_name_with_a_control_character_is_refused_as_the_description_says():
    # DEL (\x7f) is a control character to the stored-path rules (files/paths.py); the name's pattern says so.
    from pydantic import ValidationError

    from app.files.schemas import ExportRequest

    assert ExportRequest.model_validate({"name": "run.zip"}).name == "run.zip"
    for name in ("\x7frun.zip", "a\x1fb.zip", "a/b.zip"):
        with pytest.raises(ValidationError):
            ExportRequest.model_validate({"name": name})

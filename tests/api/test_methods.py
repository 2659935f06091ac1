"""OPTIONS and 405 carry the route's real methods in `Allow`, and the description says so."""

from __future__ import annotations

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


def _allow(response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


async def test_options_lists_every_method_of_the_path(server):
    async with server.anonymous() as client:
        # GET and POST of /v1/spaces are two routes; both are listed, without credentials.
        r = await client.options("/v1/spaces")
        assert r.status_code == 204 and r.content == b""
        assert _allow(r) == {"GET", "POST", "OPTIONS"}
        assert r.headers["x-request-id"]
        r = await client.options("/v1/spaces/00000000-0000-7000-8000-000000000000")
        assert _allow(r) == {"GET", "PATCH", "DELETE", "OPTIONS"}
        r = await client.options("/v1/no/such/route")
        assert r.status_code == 404 and r.json()["code"] == "route.not_found"


async def test_405_names_the_methods_in_the_envelope(api):
    r = await api.put("/v1/spaces")
    assert r.status_code == 405
    assert r.json()["code"] == "request.method_not_allowed"
    assert _allow(r) == {"GET", "POST", "OPTIONS"}
    r = await api.put("/v1/runtimes/00000000-0000-7000-8000-000000000000")
    assert r.status_code == 405 and _allow(r) == {"GET", "PATCH", "DELETE", "OPTIONS"}


async def test_description_lists_only_statuses_the_server_sends(server):
    schema = server.app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            if op.get("security"):
                assert "401" in responses, (method, path)
            if path.startswith("/v1/"):
                assert {"400", "503"} <= set(responses), (method, path)
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                assert response["headers"]["x-request-id"]["required"], (method, path, status)
    content = schema["paths"]["/v1/files/{file_id}/content"]["get"]["responses"]
    assert {"*/*", "application/octet-stream"} <= set(content["200"]["content"])
    assert "Content-Range" in content["206"]["headers"]
    # Success bodies are described in their real media type only.
    paths = schema["paths"]
    assert list(paths["/v1/runs/{run_id}/stream"]["get"]["responses"]["200"]["content"]) == ["text/event-stream"]
    assert list(paths["/v1/replay/frames/{seq}"]["get"]["responses"]["200"]["content"]) == ["image/jpeg"]
    assert "*/*" in paths["/v1/replay/video"]["get"]["responses"]["200"]["content"]
    ttl = schema["components"]["schemas"]["ConnectionCreate"]["properties"]["ttlSeconds"]
    assert (ttl["minimum"], ttl["maximum"]) == (server.settings.min_lease_ttl_seconds, 7200)
    key = next(p for p in paths["/v1/spaces"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and key["schema"]["anyOf"][0]["maxLength"] == 200

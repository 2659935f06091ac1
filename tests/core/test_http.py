"""Cross-cutting HTTP behaviour: auth, the error envelope, request ids, body limits, probes, OpenAPI."""

from __future__ import annotations

import pytest

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def test_missing_and_wrong_keys_are_401(server):
    async with server.anonymous() as anon:
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic abc"},
            {"Authorization": "Bearer "},
        ):
            response = await anon.get("/v1/spaces", headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["code"] == "auth.required" and body["requestId"] == response.headers["x-request-id"]


async def test_whoami(api):
    me = (await api.get("/v1/auth/whoami")).json()
    assert me["scope"] == "organization" and me["subaccountId"] is None and me["email"] is None
    assert me["keyId"] and me["organizationId"] and me["defaultSpaceId"]


async def test_bootstrap_key_from_settings(make_server):
    async with make_server("sqlite", api_key="bctrl_bootstrap_test") as srv:
        async with srv.anonymous({"Authorization": "Bearer bctrl_bootstrap_test"}) as client:
            assert (await client.get("/v1/auth/whoami")).status_code == 200
            space = (await client.post("/v1/spaces", json={"name": "x"})).json()
            assert space["id"] in [s["id"] for s in (await client.get("/v1/spaces")).json()["data"]]


async def test_api_keys_are_stored_hashed(server):
    from sqlalchemy import select

    from app.accounts.models import ApiKey
    from app.accounts.service import create_account, create_key

    account = await create_account(server.ctx.db, "hash-check")
    key = await create_key(server.ctx.db, account.id)
    assert key.secret.startswith("bctrl_") and len(key.secret) > 40
    async with server.ctx.db.transaction() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == key.id))).scalar_one()
    assert row.key_hash != key.secret and len(row.key_hash) == 64 and key.secret.startswith(row.prefix)
    assert len(row.prefix) < len(key.secret) // 3, "the stored prefix is only enough to tell keys apart"


async def test_request_id_is_echoed_or_minted(api):
    minted = await api.get("/v1/spaces")
    assert minted.headers["x-request-id"].startswith("req_")
    echoed = await api.get("/v1/spaces", headers={"x-request-id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"


async def test_unknown_route_and_method_use_the_envelope(api):
    missing = await api.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "route.not_found"
    wrong = await api.put("/v1/spaces")
    assert wrong.status_code == 405 and wrong.json()["code"] == "request.method_not_allowed"


async def test_oversize_body_is_413(server, api):
    limit = server.settings.max_body_bytes
    big = {"name": "x", "metadata": {"blob": "a" * (limit + 10)}}
    response = await api.post("/v1/spaces", json=big)
    assert response.status_code == 413 and response.json()["code"] == "request.too_large"
    assert response.headers["x-request-id"]

    async def chunks():
        for _ in range(limit // 1000 + 5):
            yield b'{"name":"x","metadata":{"blob":"' if _ == 0 else b"a" * 1000

    streamed = await api.post("/v1/spaces", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "request.too_large"
    assert (await api.get("/v1/spaces")).json()["data"] == []


async def test_probes(server):
    async with server.anonymous() as anon:
        assert (await anon.get("/healthz")).json() == {"status": "ok"}
        ready = await anon.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


async def test_readyz_reports_an_unreachable_database(make_server):
    async with make_server("sqlite") as srv:
        await srv.ctx.db.dispose()
        srv.ctx.db.engine.url  # noqa: B018 - keep the object; point it at a database that cannot open
        from app.core.db import Database

        srv.ctx.db = Database("sqlite+aiosqlite:////nonexistent-dir/x.sqlite3")
        async with srv.anonymous() as anon:
            ready = await anon.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unreachable")


async def test_server_error_has_no_stack_trace(server, api, monkeypatch):
    from app.spaces import service

    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "list_spaces", boom)
    async with server.anonymous(dict(api.headers), raise_app_exceptions=False) as client:
        response = await client.get("/v1/spaces")
    assert response.status_code == 500
    assert response.json()["code"] == "server.error" and "secret internals" not in response.text
    assert response.json()["requestId"] == response.headers["x-request-id"]


async def test_openapi_describes_every_route_and_errors(server):
    async with server.anonymous() as anon:
        spec = (await anon.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/v1/spaces", "post"),
        ("/v1/spaces/{space_id}/runtimes", "post"),
        ("/v1/runtimes/{runtime_id}/start", "post"),
        ("/v1/runs/{run_id}/events", "get"),
        ("/v1/auth/whoami", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert method in paths[path], (path, method)
    create = paths["/v1/spaces/{space_id}/runtimes"]["post"]
    for status in ("400", "401", "404", "429", "503"):
        assert create["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorOut")
    assert "RuntimeOut" in spec["components"]["schemas"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "!!!"}])
async def test_bad_paging_is_400(api, params):
    response = await api.get("/v1/spaces", params=params)
    assert response.status_code == 400 and response.json()["code"] == "request.invalid"

"""Saved proxies and a browser's proxy setting in process, over both backends: passwords sealed in the
database (saved and inline) and never answered, a browser's `proxy` shown without its password and
cleared with null, `test` through a small proxy on 127.0.0.1, and the refusals' documented codes."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.proxies.models import SavedProxy
from app.runtimes.models import Runtime
from tests.proxy_helpers import TestProxy
from tests.support import error_of

V = {"BCTRL-Version": "2026-10-03"}


async def test_saved_proxy_password_is_sealed_and_never_answered(server, api):
    made = await api.post("/v1/proxies", json={"url": "socks5://bob:hunter2@10.1.2.3:1080", "name": "lab"}, headers=V)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["hasPassword"] is True and body["protocol"] == "socks5" and "hunter2" not in made.text
    async with server.ctx.db.read() as s:
        sealed = (
            await s.execute(select(SavedProxy.password_encrypted).where(SavedProxy.id == uuid.UUID(body["id"])))
        ).scalar_one()
    assert sealed and "hunter2" not in sealed
    for response in (await api.get("/v1/proxies", headers=V), await api.get(f"/v1/proxies/{body['id']}", headers=V)):
        assert response.status_code == 200 and "hunter2" not in response.text
    taken = await api.post("/v1/proxies", json={"url": "http://h:1", "name": "lab"}, headers=V)
    assert error_of(taken, 409)["code"] == "proxy.name_conflict"
    assert error_of(await api.get(f"/v1/proxies/{uuid.uuid4()}", headers=V), 404)["code"] == "proxy.not_found"
    assert error_of(await api.get("/v1/proxies/not-an-id", headers=V), 404)["code"] == "proxy.not_found"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://h:21"}, 400, "proxy.protocol_unsupported"),
        ({"protocol": "socks4", "host": "h", "port": 1}, 400, "proxy.protocol_unsupported"),
        ({"url": "http://h:1/path"}, 400, "proxy.url_invalid"),
        ({"name": "empty"}, 400, "proxy.connection_required"),
        ({"url": "http://h:1", "password": "secret:proxies/x#p"}, 400, "proxy.password_reference_unsupported"),
        ({"type": "managed-rotating"}, 400, "proxy.managed_rotating.provider_unavailable"),
        ({"type": "managed-static", "poolId": "p1"}, 404, "proxy.pool_not_found"),
    ],
)
async def test_bad_saved_proxies(api, body, status, code):
    assert error_of(await api.post("/v1/proxies", json=body, headers=V), status)["code"] == code


async def test_a_browsers_inline_proxy_is_sealed_shown_without_password_and_cleared(server, api):
    created = await api.post(
        "/v1/browsers?wait=0",
        json={"name": "inline-proxy", "proxy": "http://carol:pa55@127.0.0.1:3128", "webRtcProxyOnly": True},
        headers=V,
    )
    # The create starts it: its run fails (nothing listens on 3128), the setting is kept all the same.
    browser_id = created.json().get("id") or created.json()["error"]["details"]["runtimeId"]
    try:
        async with server.ctx.db.read() as s:
            options = (await s.get(Runtime, uuid.UUID(browser_id))).launch_options
        assert options["proxy"]["passwordSealed"] and "pa55" not in str(options)
        got = await api.get(f"/v1/browsers/{browser_id}", headers=V)
        assert got.json()["proxy"] == {
            "type": "custom",
            "protocol": "http",
            "host": "127.0.0.1",
            "port": 3128,
            "username": "carol",
            "hasPassword": True,
        }
        assert got.json()["webRtcProxyOnly"] is True and "pa55" not in got.text
        cleared = await api.patch(f"/v1/browsers/{browser_id}", json={"proxy": None}, headers=V)
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["proxy"] is None
    finally:
        await api.post(f"/v1/browsers/{browser_id}/stop", headers=V)
        await api.delete(f"/v1/browsers/{browser_id}", headers=V)


async def test_test_through_a_small_proxy_tells_a_refused_sign_in(api):
    """The API tier's test URL is on the internet, which this machine cannot reach: a proxy that accepts
    the credentials is asked for it (and cannot reach it); one given a wrong password refuses."""
    upstream = TestProxy("http", username="u", password="p")
    try:
        good = await api.post("/v1/proxies", json={"url": upstream.url_with("u", "p")}, headers=V)
        result = (await api.post(f"/v1/proxies/{good.json()['id']}/test", headers=V)).json()
        assert result["object"] == "test.result" and result["ok"] is False
        assert result["code"] != "proxy.auth_rejected" and upstream.seen == ["api.ipify.org:443"]
        bad = await api.post("/v1/proxies", json={"url": upstream.url_with("u", "nope")}, headers=V)
        result = (await api.post(f"/v1/proxies/{bad.json()['id']}/test", headers=V)).json()
        assert result["ok"] is False and result["code"] == "proxy.auth_rejected" and "nope" not in str(result)
        assert upstream.refused == ["u"]
    finally:
        upstream.close()

"""Browser extensions in process over both backends: the upload's answer, list filters (a name search
with LIKE's special characters), rename, delete, idempotent upload, the account's limit, and ids that
are not the caller's refused at browser create before anything is launched."""

from __future__ import annotations

import json
import uuid

from app.extensions import service
from app.extensions.models import BrowserExtension
from app.storage import make_store
from tests.e2e.extension_packages import crx_of, manifest, marker_zip, zip_of

V = {"BCTRL-Version": "2026-10-03"}
BASE = "/v1/browser/extensions"


async def upload(api, data: bytes, filename: str = "ext.zip", status: int = 201, **fields):
    response = await api.post(
        BASE, files={"file": (filename, data, "application/octet-stream")}, data=fields, headers=V
    )
    assert response.status_code == status, response.text
    return response.json()


async def test_upload_list_rename_delete(server, api):
    zipped = await upload(api, marker_zip(), name="50%_off")
    packed, chrome_id = crx_of(zip_of({"manifest.json": json.dumps(manifest("Plain")), "mark.js": "x"}))
    crx = await upload(api, packed, "p.crx")
    assert zipped["name"] == "50%_off" and zipped["object"] == "extension" and zipped["browserCount"] == 0
    assert crx["name"] == "Plain" and crx["format"] == "crx" and crx["chromeExtensionId"] == chrome_id

    async def names(**query) -> list[str]:
        response = await api.get(BASE, params=query, headers=V)
        assert response.status_code == 200, response.text
        return [e["name"] for e in response.json()["data"]]

    assert await names() == ["Plain", "50%_off"]
    assert await names(order="asc") == ["50%_off", "Plain"]
    assert await names(q="%_") == ["50%_off"] and await names(q="0%_O") == ["50%_off"]
    assert await names(q="_x") == [] and await names(q="%") == ["50%_off"]
    assert await names(format="zip") == ["50%_off"] and await names(source="url") == []
    assert (await api.get(BASE, params={"format": "tar"}, headers=V)).status_code == 400

    renamed = await api.patch(f"{BASE}/{zipped['id']}", json={"name": "  Half  "}, headers=V)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Half"
    assert (await api.patch(f"{BASE}/{zipped['id']}", json={"name": "   "}, headers=V)).status_code == 400
    assert (await api.patch(f"{BASE}/{zipped['id']}", json={"version": "9"}, headers=V)).status_code == 400

    async with await server.client("other") as other:
        for method in ("get", "delete"):
            answer = await getattr(other, method)(f"{BASE}/{zipped['id']}", headers=V)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "browser_extension.not_found"
        assert (await other.get(BASE, headers=V)).json()["data"] == []

    async with server.ctx.db.read() as s:
        key = (await s.get(BrowserExtension, uuid.UUID(zipped["id"]))).object_key
    store = make_store(server.settings)
    assert await store.exists(key)
    deleted = await api.delete(f"{BASE}/{zipped['id']}", headers=V)
    assert deleted.json() == {"object": "extension", "id": zipped["id"], "deleted": True}
    assert (await api.get(f"{BASE}/{zipped['id']}", headers=V)).status_code == 404
    assert not await store.exists(key)  # its kept package goes with it


async def test_upload_is_idempotent_and_the_account_limit_holds(api, monkeypatch):
    headers = {**V, "Idempotency-Key": "ext-once"}
    files = {"file": ("ext.zip", marker_zip(), "application/zip")}
    first = await api.post(BASE, files=files, headers=headers)
    again = await api.post(BASE, files=files, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    monkeypatch.setattr(service, "MAX_PER_ACCOUNT", 1)
    error = (await upload(api, marker_zip(), status=400))["error"]
    assert error["code"] == "browser_extension.too_many" and error["details"]["max"] == 1


async def test_requests_that_carry_no_package(api):
    plain = await api.post(BASE, content=b"x", headers={**V, "Content-Type": "text/plain"})
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "browser_extension.file_required"
    no_url = await api.post(BASE, json={"name": "x"}, headers=V)
    assert no_url.status_code == 400 and no_url.json()["error"]["code"] == "request.invalid"
    extra = await api.post(BASE, json={"url": "https://example.com/x.crx", "zip": 1}, headers=V)
    assert extra.status_code == 400
    form = await api.post(
        BASE, files={"file": ("e.zip", marker_zip(), "application/zip")}, data={"colour": "red"}, headers=V
    )
    assert form.status_code == 400 and "colour" in form.json()["error"]["message"]


async def test_browser_create_checks_ids_before_launching(server, api):
    async with await server.client("owner") as owner:
        theirs = await upload(owner, marker_zip())
    mine = await upload(api, marker_zip())
    cases = [
        ([theirs["id"]], 404, "browser_extension.not_found"),
        (["nope"], 400, "browser_extension.invalid_ids"),
        ([mine["id"], mine["id"].upper()], 400, "browser_extension.duplicate_ids"),
    ]
    for ids, status, code in cases:
        answer = await api.post("/v1/browsers", json={"name": f"x-{code}", "extensions": ids}, headers=V)
        assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text
    listed = await api.get("/v1/browsers", headers=V)
    assert listed.json()["data"] == []  # nothing was created

"""Deleting a space leaves nothing of it in the object store, whichever generation's route deletes it:
the saved-state archive of a stopped current-generation browser goes with the space (the service's
delete removes it, so the seed/flat route and the current one both do)."""

from __future__ import annotations

import uuid

import pytest

from app.runtimes.models import Runtime
from app.storage import make_store

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CURRENT = {"BCTRL-Version": "2026-10-03"}


@pytest.mark.parametrize("route", ["seed", "current"])
async def test_a_space_delete_removes_its_browsers_saved_state_archives(server, api, route):
    made = await api.post("/v1/spaces", json={"name": f"kept-{uuid.uuid4().hex[:6]}"})
    assert made.status_code == 201, made.text
    space_id = made.json()["id"]
    scoped = {**CURRENT, "BCTRL-Space": space_id}
    created = await api.post("/v1/browsers", json={"name": "kept"}, params={"wait": 30}, headers=scoped)
    assert created.status_code == 201, created.text
    browser_id = created.json()["id"]
    try:
        assert created.json()["status"] == "running"
        stopped = await api.post(f"/v1/browsers/{browser_id}/stop", params={"wait": 30}, headers=CURRENT)
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "idle" and stopped.json()["savedState"]["status"] == "saved"
    finally:  # a failed assertion above must not leave the browser running
        await api.post(f"/v1/browsers/{browser_id}/stop", headers=CURRENT)
    async with server.ctx.db.read() as s:
        key = (await s.get(Runtime, uuid.UUID(browser_id))).saved_state["key"]
    store = make_store(server.settings)
    assert await store.exists(key)

    if route == "seed":  # no BCTRL-Version: the seed/flat route, in its shape
        deleted = await api.delete(f"/v1/spaces/{space_id}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"id": space_id, "deleted": True}
    else:
        deleted = await api.delete(f"/v1/spaces/{space_id}", headers=CURRENT)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == "deleted"
    assert (await api.get(f"/v1/spaces/{space_id}")).status_code == 404
    assert (await api.get(f"/v1/browsers/{browser_id}", headers=CURRENT)).status_code == 404
    assert not await store.exists(key)

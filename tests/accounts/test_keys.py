"""How API keys are kept: a human-chosen BCTRL_API_KEY is not recoverable from the database by a fast
digest, rotating the variable retires the old key, and minted keys keep working as before."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select, update

from app.accounts.models import ApiKey
from app.accounts.service import BOOTSTRAP_KEY_NAME
from tests.conftest import make_settings, running_app

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

CHOSEN = "correct-horse-battery-staple"


async def _status(srv, key: str) -> int:
    async with srv.anonymous(headers={"Authorization": f"Bearer {key}"}) as client:
        return (await client.get("/v1/spaces")).status_code


async def _bootstrap_rows(srv) -> list[ApiKey]:
    async with srv.ctx.db.transaction() as s:
        return list((await s.execute(select(ApiKey).where(ApiKey.name == BOOTSTRAP_KEY_NAME))).scalars())


async def test_chosen_key_is_stretched_and_rotates(tmp_path):
    async with running_app(make_settings(tmp_path, "sqlite", None, api_key=CHOSEN)) as srv:
        assert await _status(srv, CHOSEN) == 200
        assert await _status(srv, CHOSEN + "x") == 401
        [row] = await _bootstrap_rows(srv)
        # Neither the fast digest an attacker would try first nor any part of the key is stored.
        assert row.key_hash != hashlib.sha256(CHOSEN.encode()).hexdigest()
        assert row.key_hash.startswith("k1$") and CHOSEN[:6] not in row.prefix and CHOSEN[:6] not in row.key_hash

    async with running_app(make_settings(tmp_path, "sqlite", None, api_key="another-chosen-key")) as srv:
        assert await _status(srv, "another-chosen-key") == 200
        assert await _status(srv, CHOSEN) == 401  # the replaced key stopped working
        rows = await _bootstrap_rows(srv)
        assert sorted(r.revoked_at is None for r in rows) == [False, True]


async def test_legacy_digest_row_is_rewritten(tmp_path):
    async with running_app(make_settings(tmp_path, "sqlite", None, api_key=CHOSEN)) as srv:
        # What a server before this change wrote: the plain SHA-256 of the chosen key.
        async with srv.ctx.db.transaction() as s:
            await s.execute(
                update(ApiKey)
                .where(ApiKey.name == BOOTSTRAP_KEY_NAME)
                .values(key_hash=hashlib.sha256(CHOSEN.encode()).hexdigest(), prefix=CHOSEN[:12])
            )
    async with running_app(make_settings(tmp_path, "sqlite", None, api_key=CHOSEN)) as srv:
        [row] = await _bootstrap_rows(srv)
        assert row.key_hash.startswith("k1$") and row.prefix == "env:BCTRL_API_KEY"
        assert await _status(srv, CHOSEN) == 200


async def test_minted_keys_still_authenticate(api: httpx.AsyncClient, server):
    assert (await api.get("/v1/spaces")).status_code == 200
    async with server.anonymous(headers={"Authorization": "Bearer bctrl_" + "A" * 43}) as client:
        response = await client.get("/v1/spaces")
    assert response.status_code == 401 and response.json()["code"] == "auth.required"

"""A browser's inline proxy with port 0 is refused naming the port (it was silently the protocol's port)."""

from __future__ import annotations

import pytest

V = {"BCTRL-Version": "2026-10-03"}


@pytest.mark.parametrize("proxy", [{"host": "h", "port": 0}, {"url": "http://h:1", "port": 0}])
async def test_port_zero_is_refused(api, proxy):
    made = await api.post("/v1/browsers?wait=0", json={"name": "port-zero", "proxy": proxy}, headers=V)
    assert made.status_code == 400, made.text
    error = made.json()["error"]
    assert error["code"] in ("proxy.url_invalid", "request.invalid") and "port" in made.text


async def test_an_idempotency_record_gives_no_way_to_guess_the_password(server, api):
    """The record of an Idempotency-Key keeps a fingerprint of the body: a plain hash of a body holding the
    password (all else known from the saved proxy) could be tried against guesses, offline."""
    import hashlib
    import uuid

    import orjson
    from sqlalchemy import select

    from app.core.idempotency import IdempotencyRecord
    from app.current.proxy_schemas import ProxyCreate

    key = f"k-{uuid.uuid4().hex}"
    body = {"url": "http://bob:guessable1@10.9.8.7:3128", "name": f"idem-{uuid.uuid4().hex[:6]}"}
    made = await api.post("/v1/proxies", json=body, headers={**V, "Idempotency-Key": key})
    assert made.status_code == 201, made.text
    async with server.ctx.db.read() as s:
        stored = (
            await s.execute(select(IdempotencyRecord.request_hash).where(IdempotencyRecord.key == key))
        ).scalar_one()
    # What an attacker with the database knows of the body: everything but the password.
    for guess in ("wrong", "guessable1"):
        dumped = ProxyCreate.model_validate({**body, "url": body["url"].replace("guessable1", guess)})
        raw = orjson.dumps(
            {"m": "POST", "r": "/v1/proxies", "b": dumped.model_dump(mode="json")}, option=orjson.OPT_SORT_KEYS
        )
        assert stored != hashlib.sha256(raw).hexdigest(), f"the fingerprint confirms the guess {guess!r}"
    # The key still replays the same request.
    again = await api.post("/v1/proxies", json=body, headers={**V, "Idempotency-Key": key})
    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]

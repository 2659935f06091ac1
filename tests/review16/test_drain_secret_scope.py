"""A key scoped to drains must not be able to read the account's vault: a drain's header or S3
credentials naming `secret:...` send the secret's value to the drain's destination, which the key
chooses. Without a scope covering secrets, such a drain is refused (403 auth.forbidden) and nothing
reaches the destination."""

from __future__ import annotations

import asyncio

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def scoped_key(sdk, scopes: list[str]) -> dict[str, str]:
    made = await sdk.http.post("/v1/api-keys", json={"name": "drains only", "scopes": scopes}, headers=sdk.raw_headers)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['secret']}", **CURRENT}


async def test_a_drains_only_key_cannot_send_a_vault_secret_to_its_own_endpoint(sdk, otlp_receiver):
    await sdk.secrets.create(path="review/otlp-token", type="value", value="vault-value-not-for-drain-keys")
    headers = await scoped_key(sdk, ["drains:write"])
    # The key cannot read the vault's values through the secrets area...
    assert (await sdk.http.get("/v1/secrets", headers=headers)).status_code == 403
    body = {
        "name": "exfil",
        "destination": {
            "type": "otlp",
            "endpoint": otlp_receiver.url,
            "headers": {"x-token": "secret:review/otlp-token"},
        },
    }
    made = await sdk.http.post("/v1/drains", json=body, headers=headers)
    if made.status_code == 201:
        await sdk.http.post(f"/v1/drains/{made.json()['id']}/test", headers=headers)
        await asyncio.sleep(0.5)
    sent = [h.get("x-token") for _, h, _ in otlp_receiver.requests]
    assert "vault-value-not-for-drain-keys" not in sent
    assert made.status_code == 403, made.text
    assert made.json()["error"]["code"] == "auth.forbidden"


async def test_a_drains_only_key_cannot_point_a_drain_holding_references_elsewhere(sdk, otlp_receiver):
    """An existing drain made with the full key: repointing it would send its credentials elsewhere."""
    await sdk.secrets.create(path="review/otlp-token-2", type="value", value="another-vault-value")
    body = {
        "destination": {
            "type": "otlp",
            "endpoint": "http://127.0.0.1:9/",
            "headers": {"x-t": "secret:review/otlp-token-2"},
        }
    }
    made = await sdk.http.post("/v1/drains", json=body, headers=sdk.raw_headers)
    assert made.status_code == 201, made.text
    headers = await scoped_key(sdk, ["drains:write"])
    moved = await sdk.http.patch(
        f"/v1/drains/{made.json()['id']}",
        json={"destination": {"type": "otlp", "endpoint": otlp_receiver.url}},
        headers=headers,
    )
    assert moved.status_code == 403, moved.text
    # Its name and state stay the key's to change.
    renamed = await sdk.http.patch(f"/v1/drains/{made.json()['id']}", json={"name": "renamed"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    # A key holding secrets:read as well may.
    both = await scoped_key(sdk, ["drains:write", "secrets:read"])
    again = await sdk.http.patch(
        f"/v1/drains/{made.json()['id']}",
        json={"destination": {"type": "otlp", "endpoint": otlp_receiver.url}},
        headers=both,
    )
    assert again.status_code == 200, again.text

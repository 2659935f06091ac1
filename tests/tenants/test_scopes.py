"""API key scopes through the official 0.3 client, in-process on both backends: a scoped key does what its
scopes allow and gets 403 `auth.forbidden` for the rest; a key never makes a wider key; bad scopes 400."""

from __future__ import annotations

import pytest
from bctrl._generated.errors import BadRequestError, ForbiddenError
from bctrl._generated.types import ApiKeyCreateRequestZero

from tests.support import code_of
from tests.tenants.conftest import sdk, unique


async def scoped(client, *scopes: str) -> tuple[str, list[str]]:
    made = await client.api_keys.create(request=ApiKeyCreateRequestZero(name="scoped", scopes=list(scopes)))
    return made.secret, made.data.scopes


async def test_a_scoped_key_does_what_its_scopes_allow(server, org):
    _, client = org
    secret, shown = await scoped(client, "spaces:read", "secrets:write")
    assert shown == ["secrets:write", "spaces:read"]
    narrow = sdk(server, secret)
    assert (await narrow.spaces.list()).has_more is False  # spaces:read
    with pytest.raises(ForbiddenError) as refused:
        await narrow.spaces.create(name=unique("no"))
    body = refused.value.body["error"]
    assert body["code"] == "auth.forbidden" and body["details"]["requiredScope"] == "spaces:write"
    made = await narrow.secrets.create(path=unique("scoped/a"), type="value", value="v")  # write implies read
    assert (await narrow.secrets.get(made.id)).id == made.id
    with pytest.raises(ForbiddenError):
        await narrow.api_keys.list()  # api-keys:read it does not hold
    with pytest.raises(ForbiddenError):
        await narrow.subaccounts.list()

    reader = sdk(server, (await scoped(client, "read"))[0])
    assert (await reader.api_keys.list()).data and (await reader.spaces.list()).has_more is False
    with pytest.raises(ForbiddenError):
        await reader.spaces.create(name=unique("no"))
    assert [k.scopes for k in (await client.api_keys.list(limit=200)).data if k.name == "scoped"]


async def test_a_key_never_makes_a_wider_key(server, org):
    _, client = org
    keys_admin = sdk(server, (await scoped(client, "api-keys:write", "spaces:read"))[0])
    narrower = await keys_admin.api_keys.create(request=ApiKeyCreateRequestZero(scopes=["spaces:read"]))
    assert narrower.data.scopes == ["spaces:read"]
    for wider in (["spaces:write"], ["*"], None):  # no scopes at all means everything
        with pytest.raises(ForbiddenError) as refused:
            await keys_admin.api_keys.create(request=ApiKeyCreateRequestZero(scopes=wider))
        assert code_of(refused) == "auth.forbidden"
        assert refused.value.body["error"]["details"]["reason"] == "scope_widening"
    # An unscoped key makes any key; nonsense is 400 and nothing is made.
    before = len((await client.api_keys.list(limit=200)).data)
    for bad in (["browsers:delete"], ["nosucharea:read"], ["BROWSERS:read"], [""]):
        with pytest.raises(BadRequestError):
            await client.api_keys.create(request=ApiKeyCreateRequestZero(scopes=bad))
    assert len((await client.api_keys.list(limit=200)).data) == before
    assert (await client.api_keys.create(request=ApiKeyCreateRequestZero(scopes=["*"]))).data.scopes == ["*"]

"""Subaccounts through the official 0.3 client, in-process on both backends: every route, a parent's key
acting in a child with BCTRL-Subaccount-Id, and each tenant's resources invisible to the others."""

from __future__ import annotations

import pytest
from bctrl import BctrlError
from bctrl._generated.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from bctrl._generated.types import ApiKeyCreateRequestZero

from tests.support import code_of
from tests.tenants.conftest import sdk, unique

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite


async def child_key(client, subaccount_id: str, **extra) -> str:
    made = await client.api_keys.create(
        request=ApiKeyCreateRequestZero(type="subaccount", subaccount_id=subaccount_id, **extra)
    )
    assert made.data.type == "subaccount" and made.data.subaccount_id == subaccount_id
    return made.secret


async def test_every_subaccount_route(server, org):
    _, client = org
    name = unique("acme")
    made = await client.subaccounts.create(
        name=name, external_id="cust-1", limits={"maxActiveRuns": 2, "maxSpaces": 3}, metadata={"plan": "gold"}
    )
    assert made.object == "subaccount" and made.status == "active" and made.name == name
    assert made.external_id == "cust-1" and made.metadata == {"plan": "gold"}
    assert made.limits.max_active_runs == 2 and made.limits.max_spaces == 3 and made.limits.monthly_credit_limit is None
    assert made.default_space_id and made.archived_at is None and made.usage is None

    # By id and by name; with its usage inline.
    got = await client.subaccounts.get(made.id, include="usage")
    assert got.id == made.id and got.default_space_id == made.default_space_id
    assert got.usage.subaccount_id == made.id and got.usage.runs.active == 0 and got.usage.runs.limit == 2
    assert got.usage.spaces.used == 1 and got.usage.spaces.limit == 3 and got.usage.credits.used == 0
    assert got.usage.period.started_at < got.usage.period.ends_at
    assert (await client.subaccounts.get(name)).id == made.id

    other = await client.subaccounts.create(name=unique("globex"))
    listed = await client.subaccounts.list(order="asc", limit=10)
    assert [s.id for s in listed.data] == [made.id, other.id] and listed.has_more is False
    assert [s.id for s in (await client.subaccounts.list(external_id="cust-1")).data] == [made.id]
    assert [s.id for s in (await client.subaccounts.list(q="GLOBEX")).data] == [other.id]
    paged = await client.subaccounts.list(limit=1)
    assert len(paged.data) == 1 and paged.has_more and paged.next_cursor
    with_usage = await client.subaccounts.list(include="usage")
    assert all(s.usage is not None for s in with_usage.data)

    usage = await client.subaccounts.usage.list()
    assert sorted(u.subaccount_id for u in usage.data) == sorted([made.id, other.id])

    # Limits merge (a null removes one), metadata is replaced, externalId can be cleared.
    updated = await client.subaccounts.update(
        made.id, limits={"maxActiveRuns": None, "monthlyCreditLimit": 120.5}, metadata={"tier": 2}, name=name + "-b"
    )
    assert updated.limits.max_active_runs is None and updated.limits.max_spaces == 3
    assert updated.limits.monthly_credit_limit == 120.5 and updated.metadata == {"tier": 2}
    assert updated.name == name + "-b"
    cleared = await client.subaccounts.with_raw_response.update(made.id, external_id=None)
    assert cleared.data.external_id is None

    # A name another active subaccount has is 409; unknown ids and names are 404; bad limits 400.
    with pytest.raises(ConflictError) as taken:
        await client.subaccounts.create(name=other.name)
    assert code_of(taken) == "subaccount.conflict"
    for unknown in ("0190a000-0000-7000-8000-000000000000", "no-such-tenant"):
        with pytest.raises(NotFoundError) as missing:
            await client.subaccounts.get(unknown)
        assert code_of(missing) == "subaccount.not_found"
    with pytest.raises(BadRequestError):
        await client.subaccounts.create(name=unique("x"), limits={"maxSpaces": -1})

    archived = await client.subaccounts.archive(other.id)
    assert archived.archived is True and archived.id == other.id and archived.object == "subaccount"
    again = await client.subaccounts.get(other.id)
    assert again.status == "archived" and again.archived_at is not None
    assert [s.id for s in (await client.subaccounts.list(status="archived")).data] == [other.id]
    assert (await client.subaccounts.archive(other.id)).archived is True  # a repeat answers the same
    with pytest.raises(ConflictError) as frozen:
        await client.subaccounts.update(other.id, name="renamed")
    assert code_of(frozen) == "subaccount.archived"
    # Its name is free again for a new tenant.
    assert (await client.subaccounts.create(name=other.name)).id != other.id


async def test_a_parent_acts_in_a_child_and_siblings_never_see_each_other(server, org):
    secret, parent = org
    a = await parent.subaccounts.create(name=unique("a"))
    b = await parent.subaccounts.create(name=unique("b"))
    in_a = sdk(server, secret, subaccount=a.id)

    who = await in_a.auth.whoami()
    assert who.scope == "subaccount" and who.subaccount_id == a.id and who.default_space_id == a.default_space_id
    assert who.effective_scope.subaccount_id == a.id
    space = await in_a.spaces.create(name=unique("a-space"))
    assert space.id in [s.id for s in (await in_a.spaces.list(limit=200)).data]

    key_a = await child_key(parent, a.id)
    key_b = await child_key(parent, b.id)
    as_a, as_b = sdk(server, key_a), sdk(server, key_b)
    assert (await as_a.spaces.get(space.id)).id == space.id
    assert (await as_a.auth.whoami()).subaccount_id == a.id

    # The sibling, the parent without the header, and another organization: 404.
    for outsider in (as_b, parent, sdk(server, secret, subaccount=b.id)):
        with pytest.raises(NotFoundError):
            await outsider.spaces.get(space.id)
        assert space.id not in [s.id for s in (await outsider.spaces.list(limit=200)).data]
    # A child's key cannot reach its sibling or its parent through the header.
    for header in (b.id, who.organization_id, "not-an-id"):
        with pytest.raises(BctrlError) as refused:  # spaces.list documents no 404: the SDK's base class
            await sdk(server, key_a, subaccount=header).spaces.list()
        assert refused.value.status_code == 404 and code_of(refused) == "subaccount.not_found"
    assert (await sdk(server, key_a, subaccount=a.id).spaces.get(space.id)).id == space.id
    # Another organization's key naming this parent's subaccount: 404, as an unknown id.
    async with await server.client("intruder") as intruder:
        answer = await intruder.get("/v1/spaces", headers={"BCTRL-Subaccount-Id": a.id, "BCTRL-Version": "2026-10-03"})
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "subaccount.not_found"
    # Subaccounts are managed by the organization alone.
    for inside in (as_a, in_a):
        with pytest.raises(ForbiddenError) as denied:
            await inside.subaccounts.list()
        assert code_of(denied) == "subaccounts.access_denied"

    # Keys: the parent sees its own and its children's; filters by subaccount and type.
    children = await parent.api_keys.list(subaccount_id=a.id)
    assert [k.subaccount_id for k in children.data] == [a.id]
    kinds = {k.type for k in (await parent.api_keys.list(limit=200)).data}
    assert kinds == {"organization", "subaccount"}
    assert {k.type for k in (await parent.api_keys.list(type="subaccount", limit=200)).data} == {"subaccount"}
    assert [k.type for k in (await as_a.api_keys.list()).data] == ["subaccount"]
    with pytest.raises(ForbiddenError) as others:
        await as_a.api_keys.list(subaccount_id=b.id)
    assert code_of(others) == "api_keys.subaccount_access_denied"

    # Archive: the child's keys stop at once; the parent reads its records but starts nothing in it.
    await parent.subaccounts.archive(a.id)
    with pytest.raises(UnauthorizedError) as stopped:
        await as_a.spaces.list()
    assert code_of(stopped) == "subaccount.archived"
    assert (await in_a.spaces.get(space.id)).id == space.id
    with pytest.raises(ForbiddenError) as frozen:
        await in_a.spaces.create(name=unique("late"))
    assert code_of(frozen) == "subaccount.archived"
    assert (await as_b.spaces.list()).data is not None  # the sibling is untouched


async def test_a_parent_revokes_a_child_key(server, org):
    _, parent = org
    a = await parent.subaccounts.create(name=unique("a"))
    secret = await child_key(parent, a.id, name="ci")
    key_id = next(k.id for k in (await parent.api_keys.list(subaccount_id=a.id)).data)
    assert (await sdk(server, secret).auth.whoami()).key_id == key_id
    assert (await parent.api_keys.delete(key_id)).deleted is True
    with pytest.raises(UnauthorizedError):
        await sdk(server, secret).auth.whoami()
    with pytest.raises(BadRequestError):  # a subaccount key names its subaccount
        await parent.api_keys.create(request=ApiKeyCreateRequestZero(type="subaccount"))
    with pytest.raises(ForbiddenError) as foreign:
        await parent.api_keys.create(request=ApiKeyCreateRequestZero(type="subaccount", subaccount_id="nope"))
    assert code_of(foreign) == "api_keys.subaccount_access_denied"

"""The official 0.3 client, unchanged (`from bctrl import Bctrl`), against a real server process: spaces,
whoami, API keys, the account's settings (a logo the pages cannot show refused) and help, the
`BCTRL-Space` scope, and errors as the SDK's exception classes."""

from __future__ import annotations

import uuid

import pytest
from bctrl import AsyncBctrl, Bctrl
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError

from tests.e2e.test_current_branding import branded  # noqa: F401
from tests.e2e.test_current_sdk import code_of, unique


@pytest.fixture
def spaces(client):
    """Spaces a test creates, deleted in teardown whatever the test's outcome."""
    made: list[str] = []
    yield made.append
    for space_id in made:
        try:
            client.spaces.delete(space_id)
        except NotFoundError:
            pass


@pytest.fixture
def keys(client):
    """API keys a test creates, revoked in teardown (with the bootstrap key)."""
    made: list[str] = []
    yield made.append
    for key_id in made:
        try:
            client.api_keys.delete(key_id)
        except NotFoundError:
            pass


def test_spaces_lifecycle(client, spaces):
    name = unique("space")
    created = client.spaces.create(name=name)
    spaces(created.id)
    assert created.object == "space" and created.status == "active" and created.name == name
    assert created.is_default is False and created.capability_scopes == [] and created.expire_after_idle_days == 0

    got = client.spaces.get(created.id)
    assert got.id == created.id and got.region == created.region

    listed = client.spaces.list(order="asc", limit=200)
    assert created.id in [s.id for s in listed.data] and listed.has_more is False

    renamed = client.spaces.update(created.id, name=name + "-b")
    assert renamed.name == name + "-b"
    assert client.spaces.get("default").is_default is True

    deleted = client.spaces.delete(created.id, wait=10)
    assert deleted.id == created.id and deleted.status == "deleted"
    with pytest.raises(NotFoundError) as gone:
        client.spaces.get(created.id)
    assert code_of(gone) == "space.not_found"


def test_space_errors_are_the_sdk_s_exceptions(client, spaces):
    taken = client.spaces.create(name=unique("taken"))
    spaces(taken.id)
    other = client.spaces.create(name=unique("other"))
    spaces(other.id)

    # The client maps 409 to ConflictError only where the contract lists it (delete); elsewhere an ApiError.
    with pytest.raises(ApiError) as conflict:
        client.spaces.create(name=taken.name)
    assert conflict.value.status_code == 409 and code_of(conflict) == "space.name_conflict"
    with pytest.raises(ApiError) as rename:
        client.spaces.update(other.id, name=taken.name)
    assert rename.value.status_code == 409 and code_of(rename) == "space.name_conflict"

    with pytest.raises(BadRequestError) as scopes:
        client.spaces.create(name=unique("scoped"), capability_scopes=["browsers:read"])
    assert code_of(scopes) == "space.option_unsupported"
    with pytest.raises(BadRequestError) as region:
        client.spaces.create(region="us-east-1")
    assert code_of(region) == "space.region_invalid"
    with pytest.raises(NotFoundError):
        client.spaces.update(str(uuid.uuid4()), name="x")
    with pytest.raises(ApiError) as default:
        client.spaces.delete("default")
    assert default.value.status_code == 409 and code_of(default) == "space.default_not_deletable"


def test_the_space_header_scopes_the_client(live, client, spaces):
    here = client.spaces.create(name=unique("scope"))
    spaces(here.id)
    scoped = Bctrl(token=live.api_key, base_url=live.url, bctrl_space=here.id)
    assert scoped.auth.whoami().effective_scope.default_space_id == here.id
    assert scoped.browsers.list().data == []  # nothing runs in the new space
    lost = Bctrl(token=live.api_key, base_url=live.url, bctrl_space=str(uuid.uuid4()))
    for call in (lost.spaces.list, lost.api_keys.list, lost.browsers.list, lost.runs.list):
        with pytest.raises(ApiError) as unknown:
            call()
        assert unknown.value.status_code == 404 and code_of(unknown) == "space.not_found"


def test_whoami_and_api_keys(live, client, keys):
    me = client.auth.whoami()
    assert me.object == "identity" and me.scope == "organization" and me.plan == "enterprise"
    assert me.default_space_id == client.spaces.get("default").id

    made = client.api_keys.create(request={"name": unique("ci")})
    keys(made.data.id)
    assert made.secret.startswith("bctrl_") and made.data.key_prefix == made.secret[:12]
    assert made.data.scopes == [] and made.data.type == "organization"

    second = Bctrl(token=made.secret, base_url=live.url)
    assert second.auth.whoami().key_id == made.data.id
    listed = client.api_keys.list(limit=200)
    mine = next(k for k in listed.data if k.id == made.data.id)
    assert mine.usage_count == 1 and mine.last_used_at is not None

    with pytest.raises(ForbiddenError) as itself:
        second.api_keys.delete(made.data.id)
    assert code_of(itself) == "auth.forbidden"
    with pytest.raises(ForbiddenError):
        second.api_keys.delete(me.key_id)  # the bootstrap key: BCTRL_API_KEY retires it
    with pytest.raises(BadRequestError) as scopes:  # scopes are offered (tests/tenants); an unknown one is 400
        client.api_keys.create(request={"scopes": ["browsers:delete"]})
    assert code_of(scopes) == "request.invalid"

    deleted = client.api_keys.delete(made.data.id)
    assert deleted.deleted is True and deleted.object == "api_key"
    with pytest.raises(UnauthorizedError):
        second.auth.whoami()
    with pytest.raises(NotFoundError) as gone:
        client.api_keys.delete(made.data.id)
    assert code_of(gone) == "api_key.not_found"


def test_account_settings_and_help(client):
    account = client.account.get()
    assert account.object == "account" and account.branding.resolved.product_name
    dry = client.account.update(dry_run=True, branding={"accent": "#00aa00"})
    assert dry.branding.resolved.tokens.accent == "#00aa00"
    assert client.account.get().branding.config.accent == account.branding.config.accent
    with pytest.raises(BadRequestError):
        client.account.update(branding={"accent": "green"})

    overview = client.help()
    assert overview.type == "overview" and "spaces.create" in [t.topic for t in overview.topics]
    topic = client.help(topic="api_keys.create")
    assert topic.type == "topic" and topic.api.path == "/v1/api-keys" and topic.api.method == "POST"
    # The operations offered as MCP tools say so, as the SDK reads it.
    tool = client.help(topic="browsers.create", audience="mcp")
    assert tool.mcp.tool_name == "bctrl_browsers_create" and tool.audience == "mcp"
    assert "browsers.create" in [t.topic for t in client.help(audience="mcp").topics]


async def test_the_async_client_reads_the_same(live):
    client = AsyncBctrl(token=live.api_key, base_url=live.url)
    me = await client.auth.whoami()
    spaces = await client.spaces.list()
    assert me.default_space_id in [s.id for s in spaces.data]


def test_a_logo_the_pages_cannot_show_is_refused_dry_run_or_not(client, branded):  # noqa: F811
    kept = client.account.update(branding={"productName": "Kept", "logo": "https://cdn.example.test/ok.png"})
    for logo in ("https://user:pw@cdn.test/l.png", "https://*.cdn.test/l.png", "https://[::1]/l.png", "https://a;b/l"):
        for dry_run in (None, True):
            with pytest.raises(BadRequestError) as refused:
                client.account.update(dry_run=dry_run, branding={"logo": logo, "productName": "Changed"})
            assert code_of(refused) == "branding.logo_unsafe", (logo, dry_run)
    after = client.account.get()
    assert after.branding == kept.branding and after.updated_at == kept.updated_at  # nothing stored

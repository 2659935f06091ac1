"""The secrets vault through the official 0.3 client, unchanged, against a real server: a `login` at a
path with slashes (the client percent-encodes it as one segment), listed by prefix with folders, read
without values, updated to version 2 (with `If-Match`), both versions listed, revealed by an API key
(a view token gets 403 `secrets.reveal_forbidden`), deleted; another account sees none of it; the
values never reach the server's log."""

from __future__ import annotations

import pytest
from bctrl import Bctrl
from bctrl._generated.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
)
from bctrl._generated.types import ViewScopeSpaceInput

from tests.e2e.test_current_sdk import code_of, unique

PASSWORD = "e2e-Pa55word!vault"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(scope="module")
def root(sdk):
    """A top folder of this module's own (the session's account is shared), emptied afterwards."""
    name = unique("vault")
    yield name
    for secret in sdk.secrets.list(prefix=f"{name}/", limit=200).data:
        try:
            sdk.secrets.delete(secret.id)
        except NotFoundError:
            pass


def test_a_login_through_its_life_with_the_official_client(live, sdk, root, space):
    bot = f"{root}/prod/github/bot"
    made = sdk.secrets.create(
        path=bot,
        type="login",
        username="octo-bot",
        password=PASSWORD,
        totp=SEED,
        origins=["https://github.com"],
        label="GitHub bot",
        idempotency_key=unique("create"),
    )
    assert made.object == "secret" and made.path == bot and made.version == 1 and made.type == "login"
    assert made.has_password and made.has_totp and not made.has_value and not made.has_notes
    assert made.username == "octo-bot" and made.origins == ["https://github.com"]
    sdk.secrets.create(path=f"{root}/prod/github/ci", type="value", value="ghp_ci")
    sdk.secrets.create(path=f"{root}/prod/db", type="value", value="postgres://x")
    with pytest.raises(ConflictError) as taken:
        sdk.secrets.create(path=bot, type="value", value="again")
    assert code_of(taken) == "secrets.conflict"

    # Listed by prefix, deeper paths grouped into folders; no values anywhere.
    listed = sdk.secrets.list(prefix=f"{root}/prod/", delimiter="/", order="asc")
    assert listed.folders == [f"{root}/prod/github/"] and [s.path for s in listed.data] == [f"{root}/prod/db"]
    inside = sdk.secrets.list(prefix=f"{root}/prod/github/", delimiter="/", order="asc")
    assert [s.path for s in inside.data] == [bot, f"{root}/prod/github/ci"] and inside.folders == []
    assert [s.path for s in sdk.secrets.list(prefix=f"{root}/", type="login").data] == [bot]

    # Get by path (the client sends prod%2Fgithub%2Fbot) and by id: which fields are set, no values.
    for ref in (bot, made.id):
        got = sdk.secrets.get(ref)
        assert got.id == made.id and got.has_password and got.has_totp and got.version == 1
        assert PASSWORD not in got.model_dump_json() and SEED not in got.model_dump_json()

    # An update is version 2; a stale If-Match is 412 and changes nothing.
    updated = sdk.secrets.update(bot, password="second-" + PASSWORD, notes="rotated", if_match='"1"')
    assert updated.version == 2 and updated.has_notes
    with pytest.raises(PreconditionFailedError) as stale:
        sdk.secrets.update(bot, label="stale", if_match='"1"')
    assert code_of(stale) == "secrets.version_mismatch"
    with pytest.raises(BadRequestError) as empty:
        sdk.secrets.update(bot, password="")
    assert code_of(empty) == "secrets.field_empty"
    versions = sdk.secrets.versions(bot)
    assert [v.version for v in versions.data] == [2, 1] and all(v.secret_id == made.id for v in versions.data)
    assert versions.data[0].has_notes and not versions.data[1].has_notes

    # Reveal: the values, for a person's API key; version 1 too.
    shown = sdk.secrets.reveal(bot)
    assert shown.object == "secret.reveal_result" and shown.version == 2
    assert (shown.username, shown.password, shown.totp, shown.notes) == (
        "octo-bot",
        "second-" + PASSWORD,
        SEED,
        "rotated",
    )
    assert sdk.secrets.reveal(bot, version=1).password == PASSWORD

    # A view token may not reveal; another account does not see the secret at all.
    view = sdk.views.create(scope=ViewScopeSpaceInput(space_id=space["id"]))
    as_view = Bctrl(token=view.token, base_url=live.url)
    with pytest.raises(ForbiddenError) as refused:
        as_view.secrets.reveal(bot)
    assert code_of(refused) == "secrets.reveal_forbidden"
    sdk.views.delete(view.id)

    # Delete (If-Match the current version); then it is gone, by path and by id.
    with pytest.raises(PreconditionFailedError):
        sdk.secrets.delete(bot, if_match='"1"')
    deleted = sdk.secrets.delete(bot, if_match='"2"')
    assert deleted.deleted is True and deleted.id == made.id
    for ref in (bot, made.id):
        with pytest.raises(NotFoundError) as gone:
            sdk.secrets.get(ref)
        assert code_of(gone) == "secrets.not_found"
    with pytest.raises(NotFoundError):
        sdk.secrets.reveal(made.id)

    log = live.log()
    assert PASSWORD not in log and SEED not in log


def test_bad_paths_and_other_accounts(sdk, root, other_client):
    for path in (f"{root}/../x", f"/{root}/x", f"{root}//x", f"{root}/a\x01b", f"{root}/" + "a" * 600):
        with pytest.raises(BadRequestError) as bad:
            sdk.secrets.create(path=path, type="value", value="v")
        assert code_of(bad) == "secrets.path_invalid"
    with pytest.raises(BadRequestError) as empty:
        sdk.secrets.create(path=f"{root}/empty", type="value", value="")
    assert code_of(empty) == "secrets.field_empty"

    mine = sdk.secrets.create(path=f"{root}/mine", type="value", value="only-mine")
    for call in (
        lambda: other_client.secrets.get(mine.id),
        lambda: other_client.secrets.get(f"{root}/mine"),
        lambda: other_client.secrets.reveal(mine.id),
        lambda: other_client.secrets.update(mine.id, value="theirs"),
        lambda: other_client.secrets.delete(mine.id),
        lambda: other_client.secrets.versions(mine.id),
    ):
        with pytest.raises(NotFoundError) as hidden:
            call()
        assert code_of(hidden) == "secrets.not_found"
    assert sdk.secrets.reveal(mine.id).value == "only-mine"

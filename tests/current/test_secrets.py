"""The secrets vault in process, over both backends: values sealed at rest (the columns hold no
plaintext, under a key of the vault's own), never answered but by `reveal`, which people's API keys may
use and view tokens may not; paths by id or path (encoded or plain slashes); versions, `If-Match`,
`fromVersion`; folders of a prefix; every refusal's documented code; and the service the task runner
uses (`login_for` by origin with a TOTP code of now, `list_for_agent`), all audited without values."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pyotp
import pytest
from sqlalchemy import select

from app.ai.secrets import SecretBox
from app.core.errors import DomainError
from app.vault import service as vault
from app.vault.crypto import VaultBox
from app.vault.models import VaultAudit, VaultSecret, VaultSecretVersion
from tests.support import error_of

V = {"BCTRL-Version": "2026-10-03"}
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "hunter2-Zq9!vault"


def enc(path: str) -> str:
    """As the official client sends a `{secret}` path segment (quote_path_param)."""
    return quote(path, safe="")


async def make(api, **body) -> dict:
    body = {"type": "login", **body}
    made = await api.post("/v1/secrets", json=body, headers=V)
    assert made.status_code == 201, made.text
    return made.json()


async def a_login(api, path: str = "prod/github/bot", **extra) -> dict:
    fields = {
        "username": "octo-bot",
        "password": PASSWORD,
        "totp": SEED,
        "notes": "rotate quarterly",
        "origins": ["https://github.com", "http://127.0.0.1:8123"],
    }
    return await make(api, path=path, **{**fields, **extra})


async def row_of(server, secret_id: str) -> VaultSecret:
    async with server.ctx.db.read() as s:
        return await s.get(VaultSecret, uuid.UUID(secret_id))


async def audit_of(server, secret_id: str) -> list[VaultAudit]:
    async with server.ctx.db.read() as s:
        stmt = select(VaultAudit).where(VaultAudit.secret_id == uuid.UUID(secret_id)).order_by(VaultAudit.id)
        return list((await s.execute(stmt)).scalars())


async def test_a_login_is_sealed_at_rest_and_answers_only_which_fields_are_set(server, api):
    made = await a_login(api)
    assert made["object"] == "secret" and made["type"] == "login" and made["path"] == "prod/github/bot"
    assert made["version"] == 1 and made["username"] == "octo-bot"
    assert (made["hasPassword"], made["hasTotp"], made["hasNotes"], made["hasValue"]) == (True, True, True, False)
    assert made["origins"] == ["https://github.com", "http://127.0.0.1:8123"]
    for word in (PASSWORD, SEED, "rotate quarterly"):
        assert word not in str(made)

    # The columns hold ciphertext, under the vault's own key: the AI credentials' box opens none of it.
    row = await row_of(server, made["id"])
    async with server.ctx.db.read() as s:
        version = (
            await s.execute(select(VaultSecretVersion).where(VaultSecretVersion.secret_id == row.id))
        ).scalar_one()
    for sealed in (row.password_sealed, row.totp_sealed, row.notes_sealed, version.password_sealed):
        assert sealed and PASSWORD not in sealed and SEED not in sealed and "rotate" not in sealed
    assert VaultBox(server.ctx.signing_key).open(row.id, "password", row.password_sealed) == PASSWORD
    assert SecretBox(server.ctx.signing_key).open(row.password_sealed) is None
    # A sealed field does not open in another field or for another secret.
    assert VaultBox(server.ctx.signing_key).open(row.id, "notes", row.password_sealed) is None
    assert VaultBox(server.ctx.signing_key).open(uuid.uuid4(), "password", row.password_sealed) is None

    # By id, by the client's encoded path, and by a path with plain slashes: metadata only.
    for ref in (made["id"], enc("prod/github/bot"), "prod/github/bot"):
        got = await api.get(f"/v1/secrets/{ref}", headers=V)
        assert got.status_code == 200, got.text
        assert got.json()["id"] == made["id"] and got.headers["etag"] == '"1"'
        assert PASSWORD not in got.text and SEED not in got.text and "rotate" not in got.text
    listed = await api.get("/v1/secrets", headers=V)
    assert [s["id"] for s in listed.json()["data"]] == [made["id"]] and PASSWORD not in listed.text
    versions = await api.get(f"/v1/secrets/{enc('prod/github/bot')}/versions", headers=V)
    assert versions.status_code == 200 and PASSWORD not in versions.text and "Sealed" not in versions.text
    assert [a.action for a in await audit_of(server, made["id"])] == ["create"]


async def test_a_duplicate_path_is_409_and_unknown_or_foreign_secrets_are_404(server, api):
    made = await a_login(api, path="ops/db")
    taken = await api.post("/v1/secrets", json={"type": "value", "path": "ops/db", "value": "x"}, headers=V)
    assert error_of(taken, 409)["code"] == "secrets.conflict"
    for ref in (str(uuid.uuid4()), "not-an-id", enc("ops/nothing"), "ops/nothing", enc("ops/db/")):
        assert error_of(await api.get(f"/v1/secrets/{ref}", headers=V), 404)["code"] == "secrets.not_found"
        assert error_of(await api.post(f"/v1/secrets/{ref}/reveal", headers=V), 404)["code"] == "secrets.not_found"
    async with await server.client("other vault") as other:
        for ref in (made["id"], enc("ops/db")):
            for call in (
                other.get(f"/v1/secrets/{ref}", headers=V),
                other.patch(f"/v1/secrets/{ref}", json={"label": "mine"}, headers=V),
                other.delete(f"/v1/secrets/{ref}", headers=V),
                other.post(f"/v1/secrets/{ref}/reveal", headers=V),
                other.get(f"/v1/secrets/{ref}/versions", headers=V),
            ):
                assert error_of(await call, 404)["code"] == "secrets.not_found"
        assert (await other.get("/v1/secrets", headers=V)).json()["data"] == []
        # The same path is free in another account.
        assert (
            await other.post("/v1/secrets", json={"type": "value", "path": "ops/db", "value": "v"}, headers=V)
        ).status_code == 201
    assert (await api.get(f"/v1/secrets/{made['id']}", headers=V)).json()["version"] == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"path": "prod/../github"}, "secrets.path_invalid", "path"),
        ({"path": ".."}, "secrets.path_invalid", "path"),
        ({"path": "prod/./x"}, "secrets.path_invalid", "path"),
        ({"path": "/prod/github"}, "secrets.path_invalid", "path"),
        ({"path": "prod//github"}, "secrets.path_invalid", "path"),
        ({"path": "prod/github/"}, "secrets.path_invalid", "path"),
        ({"path": "prod/git\x07hub"}, "secrets.path_invalid", "path"),
        ({"path": "prod/git\nhub"}, "secrets.path_invalid", "path"),
        ({"path": "prod/git hub"}, "secrets.path_invalid", "path"),
        ({"path": "prod/" + "a" * 129}, "secrets.path_invalid", "path"),
        ({"path": "/".join(["a" * 100] * 6)}, "secrets.path_invalid", "path"),
        ({"path": ""}, "secrets.path_invalid", "path"),
        ({"path": 7}, "secrets.path_invalid", "path"),
        ({"type": "value", "value": ""}, "secrets.field_empty", "value"),
        ({"type": "value", "value": "   "}, "secrets.field_empty", "value"),
        ({"type": "value"}, "secrets.field_empty", "value"),
        ({"type": "value", "value": None}, "secrets.field_empty", "value"),
        ({"type": "login", "password": ""}, "secrets.field_empty", "password"),
        ({"type": "login", "username": "only-me", "totp": ""}, "secrets.field_empty", "totp"),
        ({"type": "login", "password": None, "label": "nothing else"}, "secrets.field_empty", "password"),
        ({"type": "login", "password": "p", "value": "v"}, "secrets.invalid", "value"),
        ({"type": "value", "value": "v", "password": "p"}, "secrets.invalid", "password"),
        ({"type": "value", "value": "v", "origins": ["https://a.example"]}, "secrets.invalid", "origins"),
        ({"type": "login", "password": "p", "totp": "not base32!"}, "secrets.invalid", "totp"),
        ({"type": "login", "password": "p", "totp": "JBSWY3DP"}, "secrets.invalid", "totp"),
        ({"type": "login", "password": "p", "origins": ["github.com"]}, "secrets.origin_invalid", "origins[0]"),
        (
            {"type": "login", "password": "p", "origins": ["https://github.com/login"]},
            "secrets.origin_invalid",
            "origins[0]",
        ),
        ({"type": "login", "password": "p", "origins": ["ftp://github.com"]}, "secrets.origin_invalid", "origins[0]"),
        (
            {"type": "login", "password": "p", "origins": ["https://a*.github.com"]},
            "secrets.origin_invalid",
            "origins[0]",
        ),
        ({"type": "login", "password": "p" * 4097}, "secrets.invalid", "password"),
        ({"type": "secret", "value": "v"}, "request.invalid", None),
        ({"type": "value", "value": "v", "colour": "blue"}, "request.invalid", None),
    ],
)
async def test_bad_creates_are_400_with_their_codes_and_make_nothing(api, body, code, field):
    base = {"path": "bad/input", "type": "login", "password": "p"}
    if body.get("type") == "value":
        base = {"path": "bad/input"}
    body = {**base, **body}
    error = error_of(await api.post("/v1/secrets", json=body, headers=V), 400)
    assert error["code"] == code, error
    if field:
        assert error["details"]["fields"][0]["field"] == field
    assert (await api.get("/v1/secrets", headers=V)).json()["data"] == []


async def test_update_makes_versions_null_clears_if_match_and_from_version(server, api):
    made = await a_login(api, path="prod/site")
    ref = enc("prod/site")
    updated = await api.patch(
        f"/v1/secrets/{ref}", json={"password": "second-pass", "notes": None, "label": "Site"}, headers=V
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (
        body["version"] == 2 and body["hasNotes"] is False and body["hasPassword"] is True and body["label"] == "Site"
    )
    assert updated.headers["etag"] == '"2"' and "second-pass" not in updated.text

    stale = await api.patch(f"/v1/secrets/{ref}", json={"label": "x"}, headers={**V, "If-Match": '"1"'})
    error = error_of(stale, 412)
    assert error["code"] == "secrets.version_mismatch" and error["details"]["currentVersion"] == 2
    fresh = await api.patch(f"/v1/secrets/{ref}", json={"username": "other"}, headers={**V, "If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.json()["version"] == 3 and fresh.json()["username"] == "other"

    # fromVersion alone restores the values of version 1 (the label stays).
    restored = await api.patch(f"/v1/secrets/{ref}", json={"fromVersion": 1}, headers=V)
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 4 and restored.json()["username"] == "octo-bot"
    assert restored.json()["hasNotes"] is True and restored.json()["label"] == "Site"
    shown = (await api.post(f"/v1/secrets/{ref}/reveal", json={}, headers=V)).json()
    assert shown["password"] == PASSWORD and shown["notes"] == "rotate quarterly" and shown["version"] == 4

    refusals = [
        ({"fromVersion": 1, "label": "x"}, {}, 400, "secrets.invalid"),
        ({"fromVersion": 99}, {}, 404, "secrets.version_not_found"),
        ({}, {}, 400, "secrets.invalid"),
        ({"password": ""}, {}, 400, "secrets.field_empty"),
        ({"username": None, "password": None, "totp": None}, {}, 409, "secrets.conflict"),
        ({"value": "v"}, {}, 409, "secrets.conflict"),
        ({"origins": ["https://x.example/path"]}, {}, 400, "secrets.origin_invalid"),
        ({"path": "moved/elsewhere"}, {}, 400, "request.invalid"),
        ({"label": "y"}, {"If-Match": "three"}, 400, "request.invalid"),
        ({"label": "y"}, {"If-Match": '"3"'}, 412, "secrets.version_mismatch"),
    ]
    for patch, headers, status, code in refusals:
        response = await api.patch(f"/v1/secrets/{ref}", json=patch, headers={**V, **headers})
        assert error_of(response, status)["code"] == code, (patch, response.text)
    assert (await api.get(f"/v1/secrets/{made['id']}", headers=V)).json()["version"] == 4  # nothing half-made

    versions = (await api.get(f"/v1/secrets/{ref}/versions", headers=V)).json()
    assert [v["version"] for v in versions["data"]] == [4, 3, 2, 1] and versions["hasMore"] is False
    assert versions["data"][-1]["object"] == "secret.version" and versions["data"][-1]["secretId"] == made["id"]
    assert versions["data"][2]["hasNotes"] is False and versions["data"][3]["hasNotes"] is True
    assert versions["data"][0]["createdBy"].startswith("key:")
    first = (await api.get(f"/v1/secrets/{ref}/versions?order=asc&limit=3", headers=V)).json()
    assert [v["version"] for v in first["data"]] == [1, 2, 3] and first["hasMore"] is True
    rest = (
        await api.get(f"/v1/secrets/{ref}/versions?order=asc&limit=3&cursor={first['nextCursor']}", headers=V)
    ).json()
    assert [v["version"] for v in rest["data"]] == [4] and rest["hasMore"] is False

    # A value secret keeps its value: clearing it is refused (what fits depends on the type: 409).
    value = await make(api, type="value", path="prod/token", value="tok-1")
    cleared = error_of(await api.patch(f"/v1/secrets/{value['id']}", json={"value": None}, headers=V), 409)
    assert cleared["code"] == "secrets.conflict" and cleared["details"]["type"] == "value"
    assert cleared["details"]["fields"][0]["field"] == "value"


async def test_reveal_is_for_api_keys_only_audited_and_by_version(server, api):
    made = await a_login(api, path="team/mail")
    await api.patch(f"/v1/secrets/{made['id']}", json={"password": "pass-two"}, headers=V)
    shown = await api.post(f"/v1/secrets/{enc('team/mail')}/reveal", headers=V)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "id": made["id"],
        "object": "secret.reveal_result",
        "path": "team/mail",
        "version": 2,
        "username": "octo-bot",
        "password": "pass-two",
        "totp": SEED,
        "value": None,
        "notes": "rotate quarterly",
    }
    old = (await api.post(f"/v1/secrets/{made['id']}/reveal", json={"version": 1}, headers=V)).json()
    assert old["password"] == PASSWORD and old["version"] == 1
    missing = await api.post(f"/v1/secrets/{made['id']}/reveal", json={"version": 7}, headers=V)
    assert error_of(missing, 404)["code"] == "secrets.version_not_found"
    assert error_of(await api.post(f"/v1/secrets/{made['id']}/reveal", json={"version": 0}, headers=V), 400)

    # A view token is not a person: 403, whatever secret it names; a forged one 401.
    space = (await api.post("/v1/spaces", json={"name": f"vault-{uuid.uuid4().hex[:6]}"})).json()["id"]
    view = await api.post("/v1/views", json={"scope": {"spaceId": space}}, headers=V)
    assert view.status_code == 201, view.text
    token = view.json()["token"]
    async with server.anonymous(headers={"Authorization": f"Bearer {token}", **V}) as holder:
        refused = await holder.post(f"/v1/secrets/{made['id']}/reveal", json={})
        assert error_of(refused, 403)["code"] == "secrets.reveal_forbidden" and "pass-two" not in refused.text
        assert error_of(await holder.post(f"/v1/secrets/{enc('team/mail')}/reveal"), 403)["code"] == (
            "secrets.reveal_forbidden"
        )
        assert (await holder.get(f"/v1/secrets/{made['id']}")).status_code == 401  # a view token is no API key
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with server.anonymous(headers={"Authorization": f"Bearer {forged}", **V}) as holder:
        assert (await holder.post(f"/v1/secrets/{made['id']}/reveal")).status_code == 401

    # The service refuses anything but a person's key too (a task's actor).
    row = await row_of(server, made["id"])
    with pytest.raises(DomainError) as refused_task:
        await vault.reveal(server.ctx, row, {"kind": "task", "taskId": str(uuid.uuid4())})
    assert refused_task.value.status == 403 and refused_task.value.code == "secrets.reveal_forbidden"

    trail = await audit_of(server, made["id"])
    assert [a.action for a in trail] == ["create", "update", "reveal", "reveal"]
    assert trail[2].actor["kind"] == "api_key" and trail[2].detail["version"] == 2 and trail[3].detail["version"] == 1
    for entry in trail:
        text = str(entry.detail) + str(entry.actor)
        assert "pass-two" not in text and PASSWORD not in text and SEED not in text
    assert (await api.get(f"/v1/secrets/{made['id']}", headers=V)).json()["lastUsedAt"] is not None


async def test_delete_with_if_match_keeps_the_audit_and_frees_the_path(server, api):
    made = await make(api, type="value", path="ci/npm-token", value="npm_abc")
    ref = enc("ci/npm-token")
    assert error_of(await api.delete(f"/v1/secrets/{ref}", headers={**V, "If-Match": '"2"'}), 412)["code"] == (
        "secrets.version_mismatch"
    )
    deleted = await api.delete(f"/v1/secrets/{ref}", headers={**V, "If-Match": '"1"'})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True and deleted.json()["id"] == made["id"] and "npm_abc" not in deleted.text
    assert error_of(await api.get(f"/v1/secrets/{made['id']}", headers=V), 404)["code"] == "secrets.not_found"
    assert error_of(await api.delete(f"/v1/secrets/{made['id']}", headers=V), 404)["code"] == "secrets.not_found"
    async with server.ctx.db.read() as s:
        left = (
            await s.execute(select(VaultSecretVersion).where(VaultSecretVersion.secret_id == uuid.UUID(made["id"])))
        ).all()
    assert left == []
    assert [a.action for a in await audit_of(server, made["id"])] == ["create", "delete"]
    again = await make(api, type="value", path="ci/npm-token", value="npm_def")
    assert again["id"] != made["id"] and again["version"] == 1


async def test_list_by_prefix_with_folders_type_and_pages(api):
    for path in ("prod/github/bot", "prod/github/ci", "prod/aws/root", "prod/db", "staging/db", "prodution"):
        await make(api, type="value", path=path, value="v")
    await a_login(api, path="prod/site")

    def paths(page: dict) -> list[str]:
        return [s["path"] for s in page["data"]]

    flat = (await api.get("/v1/secrets", params={"prefix": "prod/", "order": "asc"}, headers=V)).json()
    assert paths(flat) == ["prod/github/bot", "prod/github/ci", "prod/aws/root", "prod/db", "prod/site"]
    assert flat["folders"] == []
    grouped = (
        await api.get("/v1/secrets", params={"prefix": "prod/", "delimiter": "/", "order": "asc"}, headers=V)
    ).json()
    assert grouped["folders"] == ["prod/github/", "prod/aws/"] and paths(grouped) == ["prod/db", "prod/site"]
    top = (await api.get("/v1/secrets", params={"delimiter": "/", "order": "asc"}, headers=V)).json()
    assert top["folders"] == ["prod/", "staging/"] and paths(top) == ["prodution"]
    logins = (await api.get("/v1/secrets", params={"type": "login"}, headers=V)).json()
    assert paths(logins) == ["prod/site"]
    partial = (await api.get("/v1/secrets", params={"prefix": "prod"}, headers=V)).json()
    assert len(partial["data"]) == 6  # a prefix is a string prefix, not a segment

    # Folders count toward the limit and pages continue after them.
    seen_folders, seen_paths, cursor = [], [], None
    while True:
        params = {
            "prefix": "prod/",
            "delimiter": "/",
            "order": "asc",
            "limit": 1,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await api.get("/v1/secrets", params=params, headers=V)).json()
        assert len(page["data"]) + len(page["folders"]) == 1
        seen_folders += page["folders"]
        seen_paths += paths(page)
        cursor = page["nextCursor"]
        if not page["hasMore"]:
            break
    assert seen_folders == ["prod/github/", "prod/aws/"] and seen_paths == ["prod/db", "prod/site"]

    for prefix in ("../", "/prod", "prod//", "a\x01"):
        error = error_of(await api.get("/v1/secrets", params={"prefix": prefix}, headers=V), 400)
        assert error["code"] == "secrets.prefix_invalid"
    assert (
        error_of(await api.get("/v1/secrets", params={"delimiter": ","}, headers=V), 400)["code"] == "request.invalid"
    )
    assert error_of(await api.get("/v1/secrets", params={"type": "card"}, headers=V), 400)


async def test_login_for_fills_only_allowed_origins_with_a_totp_code_and_audits(server, api):
    made = await a_login(api, path="apps/portal", origins=["http://127.0.0.1:8123", "https://*.example.com"])
    row = await row_of(server, made["id"])
    actor = {"kind": "task", "taskId": str(uuid.uuid4())}
    fill = await vault.login_for(server.ctx, row, "http://127.0.0.1:8123/login?next=/", actor)
    assert fill.username == "octo-bot" and fill.password == PASSWORD
    assert fill.totp_code and len(fill.totp_code) == 6 and pyotp.TOTP(SEED).verify(fill.totp_code, valid_window=1)
    assert PASSWORD not in repr(fill)
    sub = await vault.login_for(server.ctx, row, "https://accounts.example.com", actor)
    assert sub.password == PASSWORD

    for origin in (
        "http://127.0.0.1:8124/login",  # another port
        "https://127.0.0.1:8123/login",  # another scheme
        "http://localhost:8123/login",  # another host
        "https://example.com/",  # a wildcard is for subdomains
        "https://example.com.evil.test/",
        "about:blank",
        "",
    ):
        with pytest.raises(DomainError) as refused:
            await vault.login_for(server.ctx, row, origin, actor)
        assert refused.value.status == 403 and refused.value.code == "secrets.origin_not_allowed", origin
        assert PASSWORD not in str(refused.value.details)

    bare = await make(api, path="apps/no-origins", username="u", password="p-no-origin")
    with pytest.raises(DomainError) as none_allowed:
        await vault.login_for(server.ctx, await row_of(server, bare["id"]), "http://127.0.0.1:8123", actor)
    assert none_allowed.value.status == 403 and none_allowed.value.code == "secrets.no_origins"
    value = await make(api, type="value", path="apps/key", value="k")
    with pytest.raises(DomainError) as not_login:
        await vault.login_for(server.ctx, await row_of(server, value["id"]), "http://127.0.0.1:8123", actor)
    assert not_login.value.status == 400

    trail = await audit_of(server, made["id"])
    assert [a.action for a in trail].count("fill") == 2 and [a.action for a in trail].count("fill_refused") == 7
    fills = [a for a in trail if a.action == "fill"]
    assert fills[0].actor == actor and fills[0].detail["origin"] == "http://127.0.0.1:8123"
    for entry in trail:
        assert (
            PASSWORD not in str(entry.detail)
            and SEED not in str(entry.detail)
            and fill.totp_code not in str(entry.detail)
        )

    # resolve by id or path, scoped to the account; list_for_agent shows no values.
    account = row.account_id
    assert (await vault.resolve(server.ctx, account, "apps/portal")).id == row.id
    assert (await vault.resolve(server.ctx, account, made["id"])).id == row.id
    with pytest.raises(DomainError) as missing:
        await vault.resolve(server.ctx, uuid.uuid4(), made["id"])
    assert missing.value.status == 404 and missing.value.code == "secrets.not_found"
    listed = await vault.list_for_agent(server.ctx, account, "apps/")
    assert [e["path"] for e in listed] == ["apps/key", "apps/no-origins", "apps/portal"]
    assert listed[2]["hasPassword"] and listed[2]["hasTotp"] and listed[2]["type"] == "login"
    assert PASSWORD not in str(listed) and SEED not in str(listed) and "p-no-origin" not in str(listed)


async def test_signing_value_opens_a_reference_for_the_server_and_audits_it(server, api):
    value = await make(api, type="value", path="hooks/signing", value="whsec-one")
    await api.patch(f"/v1/secrets/{value['id']}", json={"value": "whsec-two"}, headers=V)
    login = await a_login(api, path="hooks/login")
    account = (await row_of(server, value["id"])).account_id
    actor = {"kind": "task", "taskId": str(uuid.uuid4())}
    assert await vault.signing_value(server.ctx, account, "secret:hooks/signing", actor) == "whsec-two"
    assert await vault.signing_value(server.ctx, account, "secret:hooks/signing@1", actor) == "whsec-one"
    assert await vault.signing_value(server.ctx, account, "secret:hooks/signing#value@2", actor) == "whsec-two"
    assert await vault.signing_value(server.ctx, account, f"secret:{login['id']}", actor) == PASSWORD
    assert await vault.signing_value(server.ctx, account, "secret:hooks/login#username", actor) == "octo-bot"
    for ref, status, code in (
        ("secret:hooks/nothing", 404, "secrets.not_found"),
        ("secret:hooks/signing@9", 404, "secrets.version_not_found"),
        ("secret:hooks/signing#colour", 400, "secrets.reference_invalid"),
        ("secret:", 400, "secrets.reference_invalid"),
        ("secret:hooks/signing#password", 400, "secrets.field_empty"),
    ):
        with pytest.raises(DomainError) as refused:
            await vault.signing_value(server.ctx, account, ref, actor)
        assert (refused.value.status, refused.value.code) == (status, code), ref
    with pytest.raises(DomainError):
        await vault.signing_value(server.ctx, uuid.uuid4(), "secret:hooks/signing", actor)
    signs = [a for a in await audit_of(server, value["id"]) if a.action == "sign"]
    assert len(signs) == 3 and all("whsec" not in str(a.detail) for a in signs)


async def test_encoded_paths_are_one_segment_whatever_their_last_word(api):
    odd = await make(api, type="value", path="team/a+b=c,d@e~f.g_h-i", value="odd")
    tricky = await make(api, type="value", path="team/versions", value="not a listing")
    reveal_named = await make(api, type="value", path="team/x/reveal", value="not a reveal")
    got = await api.get(f"/v1/secrets/{enc('team/a+b=c,d@e~f.g_h-i')}", headers=V)
    assert got.status_code == 200 and got.json()["id"] == odd["id"]
    # Encoded, `team/versions` is the secret at that path, not the versions of `team`.
    got = await api.get(f"/v1/secrets/{enc('team/versions')}", headers=V)
    assert got.status_code == 200 and got.json()["id"] == tricky["id"]
    listed = await api.get(f"/v1/secrets/{enc('team/versions')}/versions", headers=V)
    assert [v["secretId"] for v in listed.json()["data"]] == [tricky["id"]]
    shown = await api.post(f"/v1/secrets/{enc('team/x/reveal')}/reveal", headers=V)
    assert shown.json()["value"] == "not a reveal" and shown.json()["id"] == reveal_named["id"]
    patched = await api.patch(f"/v1/secrets/{enc('team/x/reveal')}", json={"label": "r"}, headers=V)
    assert patched.status_code == 200 and patched.json()["version"] == 2

"""The account's branding (`PATCH /v1/account`) applied to the pages a viewer of the account sees, in
process over both backends: the view page, its state, and the live and replay pages carry the resolved
branding of the link's account (never another account's), HTML-escaped; their Content-Security-Policy
allows exactly the logo's https origin for images and nothing broader; a logo whose origin cannot be
named exactly is refused at `PATCH /v1/account` (and one stored before is not shown); a link that is not
valid gets the defaults."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import urlsplit

import orjson

from app.accounts import service as accounts
from tests.current.test_views import V, a_space, bearer, create
from tests.support import started_runtime

NASTY = '</script><img src=x onerror="alert(1)">&amp;'


async def brand(api, **branding) -> dict:
    """PATCH the account's branding; the account answer's resolved branding."""
    answer = await api.patch("/v1/account", json={"branding": branding}, headers=V)
    assert answer.status_code == 200, answer.text
    return answer.json()["branding"]["resolved"]


def meta_branding(page: str) -> dict | None:
    """The branding a page carries (the meta element app/web/branding.js reads), or None (defaults)."""
    [content] = re.findall(r'<meta name="bctrl-branding" content="([^"]*)">', page)
    return orjson.loads(html.unescape(content)) if content else None


def img_src(response) -> str:
    policy = response.headers["content-security-policy"]
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("img-src ")]
    return directive


async def view_of(api) -> dict:
    return await create(api, {"spaceId": await a_space(api)})


async def test_the_view_page_and_its_state_carry_the_views_account_branding(server, api):
    resolved = await brand(
        api, productName=NASTY, accent="#FF5500", logo="https://cdn.acme.test:8443/a/logo.png", showPoweredBy=True
    )
    assert resolved["productName"] == NASTY and resolved["tokens"]["accent"] == "#ff5500"
    view = await view_of(api)
    async with await server.client("other brand") as other:
        theirs = await brand(other, productName="Beta Corp", accent="#00aa55")
        their_view = await view_of(other)

        async with server.anonymous() as anyone:
            page = await anyone.get("/view", params={"token": view["token"]})
            assert page.status_code == 200
            assert meta_branding(page.text) == resolved  # exactly what the account answer resolves
            # User input stays text: the name only ever appears escaped in the page.
            assert "<img src=x" not in page.text and "</script><img" not in page.text
            assert img_src(page) == "img-src 'self' data: blob: https://cdn.acme.test:8443"
            state = await anyone.get("/view/state", headers=bearer(view["token"]))
            assert state.status_code == 200 and state.json()["branding"] == resolved

            their_page = await anyone.get("/view", params={"token": their_view["token"]})
            assert meta_branding(their_page.text) == theirs and NASTY not in html.unescape(their_page.text)
            assert img_src(their_page) == "img-src 'self' data: blob:"  # no logo: no other origin
            their_state = (await anyone.get("/view/state", headers=bearer(their_view["token"]))).json()
            assert their_state["branding"]["productName"] == "Beta Corp"
            assert their_state["branding"]["tokens"]["accent"] == "#00aa55"

            # A change shows in the state at once (the page applies it on its next poll).
            changed = await brand(api, productName="Acme", accent="#123456", logo=None)
            state = (await anyone.get("/view/state", headers=bearer(view["token"]))).json()
            assert state["branding"] == changed and state["branding"]["logo"] is None
            assert img_src(await anyone.get("/view", params={"token": view["token"]})) == "img-src 'self' data: blob:"

            # No branding set: the defaults the account answer names.
            await api.patch("/v1/account", json={"branding": None}, headers=V)
            state = (await anyone.get("/view/state", headers=bearer(view["token"]))).json()
            assert state["branding"]["productName"] == "BCTRL" and state["branding"]["showPoweredBy"] is True
            assert state["branding"] == (await api.get("/v1/account", headers=V)).json()["branding"]["resolved"]


UNSAFE_LOGOS = (
    "https://evil.test;script-src:*/logo.png",  # would add a directive to the policy
    "https://evil.test;script-src/logo.png",
    "https://user:pw@cdn.test/logo.png",  # credentials
    "https://user@cdn.test/logo.png",
    "https://cdn.test,evil.test/logo.png",  # two sources in one
    "https://*.test/logo.png",  # a wildcard
    "https://*/logo.png",
    "https://[2001:db8::1]/logo.png",  # IPv6
    "https://b\u00fccher.test/logo.png",  # not ASCII
    "https://cdn.test:0/logo.png",
    "https://cdn.test:99999/logo.png",
    "https://cdn..test/logo.png",
)


async def test_a_logo_the_pages_cannot_show_is_refused_dry_run_or_not_and_nothing_is_stored(server, api):
    kept = await brand(api, productName="Kept", logo="https://cdn.example.test/ok.png")
    before = (await api.get("/v1/account", headers=V)).json()
    view = await view_of(api)
    for logo in UNSAFE_LOGOS:
        for params in ({}, {"dryRun": "true"}):
            answer = await api.patch(
                "/v1/account", params=params, json={"branding": {"logo": logo, "productName": "Changed"}}, headers=V
            )
            assert answer.status_code == 400, (logo, params, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "branding.logo_unsafe", logo
            assert error["details"]["fields"][0]["field"] == "branding.logo"
    # Nothing of any refused request was stored: not the logo, not the name sent with it.
    assert (await api.get("/v1/account", headers=V)).json() == before
    async with server.anonymous() as anyone:
        page = await anyone.get("/view", params={"token": view["token"]})
        assert meta_branding(page.text) == kept
        assert img_src(page) == "img-src 'self' data: blob: https://cdn.example.test"
    # The default https port is the origin without it; an upper-case host is the same host.
    resolved = await brand(api, logo="https://CDN.Example.test:443/x.svg")
    assert resolved["logo"] == "https://CDN.Example.test:443/x.svg"
    async with server.anonymous() as anyone:
        page = await anyone.get("/view", params={"token": view["token"]})
        assert img_src(page) == "img-src 'self' data: blob: https://cdn.example.test"


async def test_a_logo_stored_before_the_rule_is_shown_nowhere(server, api):
    """A logo stored before PATCH refused unsafe ones (written here past the API) is in the settings as
    set, and in no resolved branding: not the account's, not the view's, not the pages'."""
    account = (await api.get("/v1/account", headers=V)).json()
    view = await view_of(api)
    for logo in UNSAFE_LOGOS[:4]:
        await accounts.set_branding(server.ctx.db, uuid.UUID(account["id"]), {"logo": logo})
        answer = (await api.get("/v1/account", headers=V)).json()["branding"]
        assert answer["config"]["logo"] == logo and answer["resolved"]["logo"] is None
        assert (await api.get(f"/v1/views/{view['id']}", headers=V)).json()["branding"] == answer["resolved"]
        async with server.anonymous() as anyone:
            page = await anyone.get("/view", params={"token": view["token"]})
            assert img_src(page) == "img-src 'self' data: blob:", logo
            assert "script-src 'self' 'unsafe-inline';" in page.headers["content-security-policy"]
            assert meta_branding(page.text) == answer["resolved"]
            state = (await anyone.get("/view/state", headers=bearer(view["token"]))).json()
            assert state["branding"]["logo"] is None


async def test_live_and_replay_pages_carry_the_links_account_branding(server, api):
    resolved = await brand(api, productName=NASTY, accent="#aa00ff", logo="https://img.acme.test/l.png")
    async with started_runtime(api) as runtime:
        run_id = runtime["connection"]["runId"]
        live = (await api.post(f"/v1/runs/{run_id}/live", json={})).json()["iframeUrl"]
        replay = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()["iframeUrl"]
        async with server.anonymous() as anyone:
            for url in (live, replay):
                parts = urlsplit(url)
                page = await anyone.get(f"{parts.path}?{parts.query}")
                assert page.status_code == 200
                assert meta_branding(page.text) == resolved, url
                assert "<img src=x" not in page.text
                assert img_src(page) == "img-src 'self' data: blob: https://img.acme.test"
                assert '<script src="/live/branding.js"></script>' in page.text
            # Another account's branding changes nothing on these pages.
            async with await server.client("someone else") as other:
                await brand(other, productName="Not yours", logo="https://other.test/x.png")
                page = await anyone.get(f"{urlsplit(live).path}?{urlsplit(live).query}")
                assert meta_branding(page.text) == resolved and "Not yours" not in page.text
            # A link that is not valid names no account: the page's defaults, the default policy.
            for path in ("/live", "/replay"):
                page = await anyone.get(path, params={"token": "forged.token"})
                assert page.status_code == 200 and meta_branding(page.text) is None
                assert img_src(page) == "img-src 'self' data: blob:"
            # A replay link is not a live link: it names no account for the live page.
            replay_token = urlsplit(replay).query.split("token=", 1)[1].split("&")[0]
            assert meta_branding((await anyone.get("/live", params={"token": replay_token})).text) is None
            script = await anyone.get("/live/branding.js")
            assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")

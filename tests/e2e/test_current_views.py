"""Views through the official client unchanged (`from bctrl import Bctrl`, 0.3) against a real server
process, and the view page in headless Chromium: a browser's view shows it live, follows it to its
recording after the stop and to its next run, and stops when the view is revoked; control through a
view is the live viewer's takeover under the controller lock; the framing policy of an embedded view; a
run's trace as a timeline and its files downloaded through the view."""

from __future__ import annotations

import time
import uuid
from functools import partial
from pathlib import Path

import httpx
import pytest
from bctrl import Bctrl
from bctrl._generated.errors import BadRequestError, NotFoundError, UnauthorizedError
from bctrl._generated.types import (
    ViewComponentsInput,
    ViewFilesCapabilitiesInput,
    ViewScopeRunInput,
    ViewScopeRuntimeInput,
    ViewScopeSpaceInput,
)
from bctrl._generated.types.view_presentation import ViewPresentation_Embedded
from playwright.sync_api import sync_playwright

from app.core.config import detect_chromium
from tests.e2e.conftest import lease
from tests.e2e.test_current_sdk import code_of, set_cookie_and_visit, unique

VERSION = "2026-10-03"
SHOTS = "/tmp"
PAGES = Path(__file__).resolve().parent / "pages"


def launch(pw, *args: str):
    return pw.chromium.launch(executable_path=detect_chromium(), args=["--no-sandbox", *args])


def poll(check, timeout: float = 10.0) -> None:
    """Poll a check until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def frame_of(page, path: str):
    """The page (`/live` or `/replay`) loaded in the view page's frame, once it is there."""
    page.wait_for_function(
        f"""() => {{
            const w = document.getElementById("frame")?.contentWindow;
            return w && w.location.pathname === "{path}" && w.document.readyState === "complete";
        }}"""
    )
    frame = next(f for f in page.frames if f"{path}?token=" in f.url)
    frame.wait_for_load_state("load")
    return frame


def live_frame(page):
    return frame_of(page, "/live")


def wait_view(page, condition: str, timeout: int = 30_000) -> None:
    # Until the view page's script has run there is no `__view`: not yet, rather than an error.
    page.wait_for_function(f"() => {{ const view = window.__view; return !!view && ({condition}); }}", timeout=timeout)


def test_a_browser_view_live_then_replay_then_next_run_then_revoked(live, client, browsers, pages):
    created = client.browsers.create(name=unique("viewed"), wait=30)
    browsers(created.id)
    set_cookie_and_visit(created.current_run.connections.cdp_url, f"{pages.url}/index.html", "v")

    view = client.views.create(
        scope=ViewScopeRuntimeInput(runtime_id=created.id),
        components=ViewComponentsInput(events=True, recordings=True),
        control=True,
    )
    assert view.object == "view" and view.control is True and view.token.startswith("bview_")
    assert view.url == f"{live.url}/view?token={view.token}"
    assert view.scope.runtime_id == created.id and view.presentation.mode == "hosted"
    got = client.views.get(view.id)
    assert got.id == view.id and got.space_name and not hasattr(got, "token")
    assert view.token not in got.model_dump_json(by_alias=True)
    listed = client.views.list()
    assert view.id in [v.id for v in listed.data] and view.token not in listed.model_dump_json(by_alias=True)

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            response = page.goto(view.url)
            assert response.status == 200
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            wait_view(page, "view.mode === 'live'")
            viewer = live_frame(page)
            viewer.wait_for_function("() => window.__viewer?.frames > 0", timeout=30_000)
            assert viewer.evaluate("window.__viewer.url").startswith(pages.url)
            wait_view(page, "view.events > 0")  # the run's events beside it (the visit above)
            assert "index.html" in page.text_content("#items")
            page.screenshot(path=f"{SHOTS}/view-live.png")

            # While a CDP client is attached to the run's lease, it holds the controller: taking control
            # through the view answers 409 and the page says so, staying watch-only.
            attached = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
            try:
                page.click("#takeover")
                page.wait_for_selector("#flash:not([hidden])")
                assert "controlled by" in page.text_content("#flash")
                wait_view(page, "view.mode === 'live' && !view.controlling")
                token = {"Authorization": f"Bearer {view.token}", "BCTRL-Version": VERSION}
                with httpx.Client(base_url=live.url, headers=token) as holder:
                    busy = holder.post("/view/live", json={"runId": created.current_run.id, "control": True})
                    assert busy.status_code == 409 and busy.json()["error"]["code"] == "browser.control_held"
            finally:
                attached.close()
            # Once it detaches, the human takes over through the same button, and hands back.
            page.click("#takeover")
            wait_view(page, "view.mode === 'control' && view.controlling")
            # The frame's viewer script may not have run yet: `?.` waits for it instead of failing.
            live_frame(page).wait_for_function("() => window.__viewer?.control === 'controlling'")
            assert client.browsers.get(created.id).current_run.control.holder == "human"
            page.click("#handback")
            wait_view(page, "view.mode === 'live' && !view.controlling")

            # After the stop the page shows the recording (the replay page) of the run it watched.
            first_run = created.current_run.id
            client.browsers.stop(created.id, wait=30)
            wait_view(page, f"view.mode === 'replay' && view.runId === '{first_run}'")
            replay = frame_of(page, "/replay")
            replay.wait_for_function("() => window.__replay?.loaded && window.__replay.frames.length > 0")
            replay.evaluate("window.__replay.seek(window.__replay.durationMs)")  # its last picture
            replay.wait_for_function("() => document.getElementById('screen').complete")
            page.screenshot(path=f"{SHOTS}/view-replay.png")

            # A view of a browser follows its current run.
            restarted = client.browsers.start(created.id, wait=30)
            wait_view(page, f"view.mode === 'live' && view.runId === '{restarted.current_run.id}'")
            viewer = live_frame(page)
            viewer.wait_for_function("() => window.__viewer?.frames > 0", timeout=30_000)
            # A second tab on the live link the view minted: it too stops when the view is revoked.
            other = chromium.new_page(bypass_csp=True)
            other.goto(viewer.url)
            other.wait_for_function("() => window.__viewer?.state === 'live'", timeout=30_000)

            deleted = client.views.delete(view.id)
            assert deleted.deleted is True and deleted.id == view.id
            other.wait_for_function("() => window.__viewer?.state === 'revoked'", timeout=10_000)
            wait_view(page, "view.stopped === true", timeout=10_000)
            assert page.query_selector("#frame") is None  # the live frame (and its socket) are gone
            assert "revoked" in page.text_content("#note")
            page.screenshot(path=f"{SHOTS}/view-revoked.png")
            again = chromium.new_page().goto(view.url)
            assert again.status == 401
        finally:
            chromium.close()

    with pytest.raises(NotFoundError) as gone:
        client.views.get(view.id)
    assert code_of(gone) == "view.not_found"
    assert view.id not in [v.id for v in client.views.list().data]


def test_human_takeover_through_a_view_holds_the_controller(live, client, stop_afterwards):
    with live.client() as raw:
        space = raw.post("/v1/spaces", json={"name": unique("takeover")}).json()["id"]
        # A seed runtime: nothing holds its controller until someone takes it.
        runtime = raw.post(f"/v1/spaces/{space}/runtimes", json={}).json()
        stop_afterwards(runtime["id"])
        poll(lambda: raw.get(f"/v1/runtimes/{runtime['id']}").json()["status"] == "active", timeout=30)

        watch_only = client.views.create(scope=ViewScopeSpaceInput(space_id=space))
        view = client.views.create(scope=ViewScopeRunInput(run_id=runtime["activeRunId"]), control=True)
        assert view.scope.run_id == runtime["activeRunId"]
        with sync_playwright() as pw:
            chromium = launch(pw)
            try:
                page = chromium.new_page(bypass_csp=True)
                page.goto(watch_only.url)
                wait_view(page, "view.mode === 'live'")
                assert page.is_hidden("#takeover")  # the view does not allow control

                page.goto(view.url)
                wait_view(page, "view.mode === 'live'")
                page.click("#takeover")
                wait_view(page, "view.mode === 'control' && view.controlling")
                live_frame(page).wait_for_function("() => window.__viewer?.control === 'controlling'")
                refused = lease(raw, runtime)  # a CDP lease while a human holds the browser: 409, as today
                assert refused.status_code == 409, refused.text
                assert refused.json()["details"]["holder"]["kind"] == "live_view"

                page.click("#handback")
                wait_view(page, "view.mode === 'live' && !view.controlling")
                # The control frame closed, which gives the controller back: a CDP lease is granted again.
                poll(lambda: lease(raw, runtime).status_code == 201)
            finally:
                chromium.close()


def test_an_embedded_view_is_framed_only_by_its_origins(live, client):
    with live.client() as raw:
        space = raw.post("/v1/spaces", json={"name": unique("embed")}).json()["id"]
    view = client.views.create(
        scope=ViewScopeSpaceInput(space_id=space),
        presentation=ViewPresentation_Embedded(allowed_origins=["http://allowed.test"]),
    )
    assert view.presentation.mode == "embedded" and view.presentation.allowed_origins == ["http://allowed.test"]
    embedder = f'<!doctype html><title>host</title><iframe id="v" src="{view.url}" width=800 height=500></iframe>'
    with sync_playwright() as pw:
        # The embedding sites are "public" to Chromium and the server is on loopback: its local network
        # access checks (a permission prompt, refused when headless) are turned off for this browser.
        chromium = launch(pw, "--disable-features=LocalNetworkAccessChecks")
        try:
            for host, shown in (("allowed.test", True), ("other.test", False)):
                page = chromium.new_page()
                # The embedding sites are served by Playwright itself: nothing leaves this machine.
                page.route(f"http://{host}/**", lambda route: route.fulfill(body=embedder, content_type="text/html"))
                answers: list[int] = []
                page.on("response", lambda r, seen=answers: seen.append(r.status) if "/view?token=" in r.url else None)
                page.goto(f"http://{host}/app")
                page.wait_for_load_state("load")
                assert answers == [200 if shown else 403]
                frame = page.frame_locator("#v")
                if shown:
                    frame.locator("#product").wait_for(timeout=15_000)
                    inner = next(f for f in page.frames if f.url.startswith(f"{live.url}/view"))
                    # (evaluate, not wait_for_function: the framing policy is enforced here, and the page's
                    # policy forbids the eval wait_for_function polls with)
                    poll(partial(inner.evaluate, "window.__view && window.__view.state !== null"), timeout=15)
                    page.screenshot(path=f"{SHOTS}/view-embedded.png")
                else:
                    inner = [f for f in page.frames if f.url.startswith(f"{live.url}/view")]
                    assert not inner or inner[0].evaluate("typeof window.__view") == "undefined"
        finally:
            chromium.close()


def test_view_errors_map_to_the_sdk_exceptions(live, client):
    with live.client() as raw:
        space = raw.post("/v1/spaces", json={"name": unique("errors")}).json()["id"]
    with pytest.raises(NotFoundError) as unknown_space:
        client.views.create(scope=ViewScopeSpaceInput(space_id=str(uuid.uuid4())))
    assert code_of(unknown_space) == "space.not_found"
    with pytest.raises(NotFoundError) as unknown_run:
        client.views.create(scope=ViewScopeRunInput(run_id=str(uuid.uuid4())))
    assert code_of(unknown_run) == "run.not_found"
    with pytest.raises(NotFoundError) as unknown_browser:
        client.views.create(scope=ViewScopeRuntimeInput(runtime_id="no-such-browser"))
    assert code_of(unknown_browser) == "browser.not_found"
    with pytest.raises(BadRequestError) as bell:
        client.views.create(scope=ViewScopeSpaceInput(space_id=space), components=ViewComponentsInput(bell=True))
    assert code_of(bell) == "view.component_denied"
    with pytest.raises(BadRequestError) as too_long:
        client.views.create(scope=ViewScopeSpaceInput(space_id=space), expires_in_seconds=31 * 86_400)
    assert code_of(too_long) == "request.invalid"
    with pytest.raises(BadRequestError):
        client.views.create(
            scope=ViewScopeSpaceInput(space_id=space),
            presentation=ViewPresentation_Embedded(allowed_origins=["not an origin"]),
        )

    key = unique("idem")
    first = client.views.create(scope=ViewScopeSpaceInput(space_id=space), idempotency_key=key)
    second = client.views.create(scope=ViewScopeSpaceInput(space_id=space), idempotency_key=key)
    assert second.id == first.id and second.token != first.token

    # The view's own token reads its view through the SDK, and nothing else.
    own = Bctrl(token=second.token, base_url=live.url)
    assert own.views.get(second.id).id == second.id
    with pytest.raises(UnauthorizedError):
        own.views.list()
    with pytest.raises(UnauthorizedError) as stale:
        Bctrl(token=first.token, base_url=live.url).views.get(first.id)
    assert code_of(stale) == "auth.view_invalid"

    more = client.views.create(scope=ViewScopeSpaceInput(space_id=space), expires_in_seconds=60)
    page_one = client.views.list(limit=1)
    assert [v.id for v in page_one.data] == [more.id] and page_one.has_more and page_one.next_cursor
    page_two = client.views.list(limit=1, cursor=page_one.next_cursor)
    assert [v.id for v in page_two.data] == [second.id]
    ascending = client.views.list(order="asc", limit=200).data
    assert [v.id for v in ascending].index(second.id) < [v.id for v in ascending].index(more.id)

    client.views.delete(more.id)
    with pytest.raises(NotFoundError):
        client.views.delete(more.id)
    with pytest.raises(UnauthorizedError):
        Bctrl(token=more.token, base_url=live.url).views.get(more.id)


def test_a_views_trace_timeline_and_files_of_a_run_driven_by_playwright(live, client, browsers, pages):
    created = client.browsers.create(name=unique("traced"), wait=30)
    browsers(created.id)
    view = client.views.create(
        scope=ViewScopeRuntimeInput(runtime_id=created.id),
        components=ViewComponentsInput(
            trace=True, recordings=True, events=True, files=ViewFilesCapabilitiesInput(read=True)
        ),
    )
    assert view.components.trace is True and view.components.files.read is True
    assert view.components.files.upload is False and view.components.files.library is False
    bare = client.views.create(scope=ViewScopeRuntimeInput(runtime_id=created.id))
    assert bare.components.trace is False and bare.components.files.read is False
    with pytest.raises(BadRequestError) as upload:
        client.views.create(
            scope=ViewScopeRuntimeInput(runtime_id=created.id),
            components=ViewComponentsInput(files=ViewFilesCapabilitiesInput(read=True, upload=True)),
        )
    assert code_of(upload) == "view.file_capability_required"
    expected = (PAGES / "report.csv").read_bytes()

    with sync_playwright() as pw:
        # The run: a Playwright client on its CDP endpoint visits a page and downloads a file from it.
        driver = pw.chromium.connect_over_cdp(created.current_run.connections.cdp_url)
        driving = driver.contexts[0].new_page()
        driving.goto(f"{pages.url}/one.html")
        with driving.expect_download() as info:
            driving.click("#dl")
        assert info.value.suggested_filename == "report.csv"

        chromium = launch(pw)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True, accept_downloads=True)
            assert page.goto(view.url).status == 200
            # The timeline: the run, its start, the CDP session still open, and the download, each a bar.
            wait_view(
                page,
                "view.mode === 'live' && view.trace && view.files > 0 && "
                "['run', 'command', 'connection', 'artifact'].every((k) => view.trace.kinds.includes(k))",
            )
            bars = page.locator("#timeline .tl-bar")
            assert bars.count() == page.evaluate("window.__view.trace.bars") >= 4
            assert page.is_visible("#trace") and page.is_visible("#files")
            session = page.locator("#timeline .tl-span[data-kind=connection]").first
            assert "tl-bar open" in session.locator(".tl-bar").get_attribute("class")  # still running
            assert "running for" in session.get_attribute("title")
            run_bar = page.locator("#timeline .tl-span[data-kind=run] .tl-bar").bounding_box()
            track = page.locator("#timeline .tl-span[data-kind=run] .tl-track").bounding_box()
            assert abs(run_bar["x"] - track["x"]) < 2 and run_bar["width"] > 0.95 * track["width"]
            for i in range(bars.count()):  # every span inside the run's time
                box = bars.nth(i).bounding_box()
                assert box["x"] >= track["x"] - 6 and box["x"] + box["width"] <= track["x"] + track["width"] + 6
            colours = {
                kind: page.locator(f"#timeline .tl-span[data-kind={kind}] .tl-bar").first.evaluate(
                    "(e) => getComputedStyle(e).backgroundColor"
                )
                for kind in ("run", "command", "connection", "artifact")
            }
            assert len(set(colours.values())) == 4, colours
            # Children sit under the run, indented.
            labels = page.locator("#timeline .tl-span .tl-label")
            assert labels.nth(1).evaluate("(e) => parseInt(e.style.paddingLeft)") > labels.nth(0).evaluate(
                "(e) => parseInt(e.style.paddingLeft)"
            )

            # The run's file, downloaded through the view's token.
            row = page.locator("#filelist .file", has_text="report.csv")
            assert "download" in row.text_content()
            with page.expect_download() as saved:
                row.locator("button").click()
            assert saved.value.suggested_filename == "report.csv"
            with open(saved.value.path(), "rb") as got:
                assert got.read() == expected
            page.screenshot(path=f"{SHOTS}/view-trace-live.png")

            # The session ends when the client leaves: its bar closes and shows its duration.
            driver.close()
            page.wait_for_selector("#timeline .tl-span[data-kind=connection] .tl-bar:not(.open)", timeout=15_000)
            session = page.locator("#timeline .tl-span[data-kind=connection]").first
            assert "duration:" in session.get_attribute("title")
            assert session.locator(".tl-dur").text_content().strip()

            # After the stop: the recording, and the run's whole trace, ended.
            first_run = created.current_run.id
            client.browsers.stop(created.id, wait=30)
            wait_view(page, f"view.mode === 'replay' && view.runId === '{first_run}' && view.trace !== null")
            page.wait_for_selector("#timeline .tl-span[data-kind=run] .tl-bar:not(.open)", timeout=15_000)
            # Its recording joins its files once it is made (the view includes recordings).
            page.locator("#filelist .file", has_text="recording").wait_for(timeout=30_000)
            assert page.locator("#filelist .file", has_text="report.csv").count() == 1
            assert "runtime.stop" in page.text_content("#timeline")
            page.locator("#timeline .tl-span[data-kind=connection] .tl-bar").first.hover()
            page.screenshot(path=f"{SHOTS}/view-trace-replay.png")
            # In a small frame (an embedding's), the timeline keeps to its share and scrolls.
            page.set_viewport_size({"width": 800, "height": 500})
            trace_box = page.locator("#trace").bounding_box()
            assert trace_box["height"] <= 0.45 * 500 and page.locator("#stage").bounding_box()["height"] > 100
            page.screenshot(path=f"{SHOTS}/view-trace-small.png")

            # A view without the components shows neither, and its token reads neither.
            page.goto(bare.url)
            wait_view(page, "view.state !== null && view.mode === 'none'")
            assert page.is_hidden("#trace") and page.is_hidden("#files")
            token = {"Authorization": f"Bearer {bare.token}", "BCTRL-Version": VERSION}
            with httpx.Client(base_url=live.url, headers=token) as holder:
                for path in ("/view/trace", "/view/files"):
                    refused = holder.get(path, params={"runId": first_run})
                    assert refused.status_code == 403 and refused.json()["error"]["code"] == "view.component_denied"
        finally:
            chromium.close()

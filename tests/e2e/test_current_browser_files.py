"""A running browser's files through the official 0.3 client, unchanged, against a real server process
and real Chromium (local driver): upload into the workspace and use it from a page's file input,
list, download, move, delete, the path rules and the limits, each change a run event."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, unique


def pick_in_page(cdp_url: str, browser_path: str) -> str:
    """Hand `browser_path` to a page's file input through DOM.setFileInputFiles; what the page reads."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.new_page()
        page.set_content('<input type="file" id="pick">')
        cdp = context.new_cdp_session(page)
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#pick"})["nodeId"]
        cdp.send("DOM.setFileInputFiles", {"nodeId": node, "files": [browser_path]})
        seen = page.evaluate(
            "(async () => { const f = document.querySelector('#pick').files[0]; "
            "return f.name + ':' + (await f.text()); })()"
        )
        page.close()
        browser.close()
    return seen


@pytest.fixture
def running(client, browsers):
    created = client.browsers.create(name=unique("bfiles"), wait=30)
    browsers(created.id)
    return created


def test_upload_is_usable_by_the_page_then_list_download_move_delete(client, running):
    bid = running.id
    body = b"hello from the API\n"
    up = client.browsers.files.upload(
        bid, path="/workspace/in/note.txt", file=("note.txt", body), create_parents="true"
    )
    assert up.status == "succeeded" and up.object == "files.result" and up.event_id
    assert up.data.path == "/workspace/in/note.txt" and up.data.size_bytes == len(body)
    assert up.data.sha256 == hashlib.sha256(body).hexdigest() and up.data.run_id == running.current_run.id
    browser_path = up.data.model_dump(by_alias=True)["browserPath"]
    assert pick_in_page(running.current_run.connections.cdp_url, browser_path) == "note.txt:" + body.decode()

    top = client.browsers.files.list(bid)
    assert [(e.name, e.kind, e.path) for e in top.data.data] == [
        ("downloads", "directory", "/downloads"),
        ("files", "directory", "/files"),
        ("workspace", "directory", "/workspace"),
    ]
    inside = client.browsers.files.list(bid, path="/workspace/in")
    assert [(e.name, e.kind, e.size_bytes) for e in inside.data.data] == [("note.txt", "file", len(body))]

    got = b"".join(client.browsers.files.download(bid, path="/workspace/in/note.txt"))
    assert got == body

    # Without overwrite an existing file is a conflict; with it, replaced.
    with pytest.raises(ApiError) as taken:
        client.browsers.files.upload(bid, path="/workspace/in/note.txt", file=("note.txt", b"other"))
    assert taken.value.status_code == 409 and code_of(taken) == "run.file_path_conflict"
    client.browsers.files.upload(bid, path="/workspace/in/note.txt", file=("n", b"v2"), overwrite="true")
    assert b"".join(client.browsers.files.download(bid, path="workspace/in/note.txt")) == b"v2"

    moved = client.browsers.files.move(bid, source_path="/workspace/in/note.txt", destination_path="/downloads/n.txt")
    assert moved.data.moved and moved.data.destination_path == "/downloads/n.txt"
    assert b"".join(client.browsers.files.download(bid, path="/downloads/n.txt")) == b"v2"
    with pytest.raises(NotFoundError) as gone:
        b"".join(client.browsers.files.download(bid, path="/workspace/in/note.txt"))
    assert code_of(gone) == "file.not_found"

    client.browsers.files.upload(bid, path="/workspace/in/x.txt", file=("x", b"x"))
    with pytest.raises(ConflictError) as not_empty:
        client.browsers.files.delete(bid, path="/workspace/in")
    assert code_of(not_empty) == "run.file_path_conflict"
    deleted = client.browsers.files.delete(bid, path="/workspace/in", recursive="true")
    assert deleted.data.deleted and deleted.data.path == "/workspace/in"
    assert client.browsers.files.list(bid, path="/workspace").data.data == []
    client.browsers.files.delete(bid, path="/downloads/n.txt")

    recorded = {e.id: e for e in client.events.list(run=running.current_run.id, order="asc", limit=200).data}
    for result, kind in (
        (up, "browser_files.uploaded"),
        (moved, "browser_files.moved"),
        (deleted, "browser_files.deleted"),
    ):
        event = recorded[result.event_id]
        assert event.type == kind and event.channel == "files" and event.actor.type == "api_key"
    assert recorded[moved.event_id].data["destinationPath"] == "/downloads/n.txt"


def test_paths_outside_the_area_missing_files_and_limits(live, client, running):
    bid = running.id
    for bad in ("/workspace/../etc/passwd", "/etc/passwd", "../x", "/workspace/a//b", "/tmp/x"):
        with pytest.raises(BadRequestError) as refused:
            client.browsers.files.upload(bid, path=bad, file=("x", b"x"))
        assert code_of(refused) == "runtime_file.path_invalid", bad
    with pytest.raises(BadRequestError) as listed_outside:
        client.browsers.files.list(bid, path="/proc")
    assert code_of(listed_outside) == "runtime_file.path_invalid"
    with pytest.raises(BadRequestError) as top:
        client.browsers.files.delete(bid, path="/downloads")
    assert code_of(top) == "runtime_file.path_invalid"
    with pytest.raises(BadRequestError) as read_only:
        client.browsers.files.upload(bid, path="/files/x.txt", file=("x", b"x"))
    assert code_of(read_only) == "runtime_file.path_invalid"

    # A symbolic link the browser's side planted, pointing out of the area, is never followed.
    workspace = Path(
        client.browsers.files.upload(bid, path="/workspace/probe", file=("p", b"p")).data.model_dump(by_alias=True)[
            "browserPath"
        ]
    ).parent
    os.symlink("/etc", workspace / "out")
    os.symlink("/etc/hostname", workspace / "host")
    with pytest.raises(BadRequestError) as through_link:
        client.browsers.files.list(bid, path="/workspace/out")
    assert code_of(through_link) == "runtime_file.path_invalid"
    with pytest.raises(BadRequestError) as read_link:
        b"".join(client.browsers.files.download(bid, path="/workspace/host"))
    assert code_of(read_link) == "runtime_file.path_invalid"
    with pytest.raises(BadRequestError):
        client.browsers.files.upload(bid, path="/workspace/out/planted", file=("x", b"x"))
    assert not Path("/etc/planted").exists()
    kinds = {e.name: e.kind for e in client.browsers.files.list(bid, path="/workspace").data.data}
    assert kinds == {"probe": "file", "out": "symlink", "host": "symlink"}

    with pytest.raises(NotFoundError) as missing:
        b"".join(client.browsers.files.download(bid, path="/downloads/nothing.bin"))
    assert code_of(missing) == "file.not_found"
    with pytest.raises(NotFoundError):
        client.browsers.files.delete(bid, path="/downloads/nothing.bin")
    with pytest.raises(ApiError) as too_big:
        client.browsers.files.upload(bid, path="/workspace/big.bin", file=("big", b"\0" * (25 * 1024 * 1024 + 1)))
    assert too_big.value.status_code == 413 and code_of(too_big) == "request.too_large"
    assert "big.bin" not in {e.name for e in client.browsers.files.list(bid, path="/workspace").data.data}


def test_listing_pages_by_name_and_a_stopped_browser(client, running):
    bid = running.id
    for name in ("c.txt", "a.txt", "b.txt"):
        client.browsers.files.upload(bid, path=f"/downloads/{name}", file=(name, name.encode()))
    first = client.browsers.files.list(bid, path="/downloads", limit=2)
    assert [e.name for e in first.data.data] == ["a.txt", "b.txt"] and first.data.has_more
    rest = client.browsers.files.list(bid, path="/downloads", limit=2, cursor=first.data.next_cursor)
    assert [e.name for e in rest.data.data] == ["c.txt"] and not rest.data.has_more
    with pytest.raises(BadRequestError) as other_dir:
        client.browsers.files.list(bid, path="/workspace", cursor=first.data.next_cursor)
    assert code_of(other_dir) == "files.invalid_cursor"

    client.browsers.stop(bid, wait=30)
    with pytest.raises(ConflictError) as stopped:
        client.browsers.files.list(bid)
    assert code_of(stopped) == "browser.not_running"

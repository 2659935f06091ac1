"""Browser files with the Docker driver, through the official 0.3 client: the area is the container's own
tmpfs mounts, reached through exec. An upload is usable by the page's file input; list, download, move
and delete work; a symbolic link planted in the container (as the browser could) is never followed."""

from __future__ import annotations

import hashlib

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError

from tests.docker.conftest import containers_of
from tests.e2e.test_current_browser_files import pick_in_page
from tests.e2e.test_current_sdk import code_of, unique


@pytest.fixture
def running(dclient):
    created = dclient.browsers.create(name=unique("dfiles"), wait=60)
    yield created
    try:
        dclient.browsers.delete(created.id)
    except NotFoundError:
        pass


def test_browser_files_in_a_container(dclient, engine, running):
    bid = running.id
    body = b"container upload\n" * 1000
    up = dclient.browsers.files.upload(bid, path="/workspace/in/up.txt", file=("up.txt", body), create_parents="true")
    assert up.data.size_bytes == len(body) and up.data.sha256 == hashlib.sha256(body).hexdigest()
    browser_path = up.data.model_dump(by_alias=True)["browserPath"]
    assert browser_path == "/tmp/workspace/in/up.txt"
    seen = pick_in_page(running.current_run.connections.cdp_url, browser_path)
    assert seen == "up.txt:" + body.decode()

    listed = dclient.browsers.files.list(bid, path="/workspace/in")
    assert [(e.name, e.kind, e.size_bytes) for e in listed.data.data] == [("up.txt", "file", len(body))]
    assert b"".join(dclient.browsers.files.download(bid, path="/workspace/in/up.txt")) == body

    with pytest.raises(ApiError) as taken:
        dclient.browsers.files.upload(bid, path="/workspace/in/up.txt", file=("up.txt", b"again"))
    assert code_of(taken) == "run.file_path_conflict"
    dclient.browsers.files.move(bid, source_path="/workspace/in/up.txt", destination_path="/downloads/up.txt")
    assert b"".join(dclient.browsers.files.download(bid, path="/downloads/up.txt")) == body
    with pytest.raises(NotFoundError) as gone:
        b"".join(dclient.browsers.files.download(bid, path="/workspace/in/up.txt"))
    assert code_of(gone) == "file.not_found"
    dclient.browsers.files.upload(bid, path="/workspace/in/b.txt", file=("b", b"b"))
    with pytest.raises(ConflictError):
        dclient.browsers.files.delete(bid, path="/workspace/in")
    dclient.browsers.files.delete(bid, path="/workspace/in", recursive="true")
    assert dclient.browsers.files.list(bid, path="/workspace").data.data == []

    # A link planted inside the container, pointing at the image's own files.
    (container,) = [c for c in containers_of(engine, bid) if c.status == "running"]
    assert container.exec_run(["ln", "-s", "/etc", "/downloads/out"], user="chrome").exit_code == 0
    kinds = {e.name: e.kind for e in dclient.browsers.files.list(bid, path="/downloads").data.data}
    assert kinds["out"] == "symlink"
    with pytest.raises(BadRequestError) as through:
        dclient.browsers.files.list(bid, path="/downloads/out")
    assert code_of(through) == "runtime_file.path_invalid"
    with pytest.raises(BadRequestError):
        b"".join(dclient.browsers.files.download(bid, path="/downloads/out/passwd"))
    dclient.browsers.files.delete(bid, path="/downloads/out")  # the link itself
    assert container.exec_run(["test", "-e", "/etc/passwd"]).exit_code == 0

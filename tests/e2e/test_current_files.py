"""Files through the official 0.3 client, unchanged (`from bctrl import Bctrl`), against a real server
process: space files in the current shape, a real run's files (a download Chromium made, the run's
recording, an input bound into its browser and used by a page, a file collected back), and every
refusal as the SDK's exception class."""

from __future__ import annotations

import time
import uuid

import pytest
from bctrl._generated.core.api_error import ApiError
from bctrl._generated.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError
from playwright.sync_api import sync_playwright

from tests.e2e.test_current_sdk import code_of, error_of, unique

# The current SDK tier's fixtures: the client, and browsers deleted in teardown.


def eventually(check, timeout: float = 60.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout}s: {value!r}"
            return value
        time.sleep(interval)


def test_space_files_in_the_current_shape(client):
    tag = uuid.uuid4().hex[:8]
    made = client.files.upload(
        file=("notes.txt", b"hello world", "text/plain"),
        filename="Notes",
        path=f"{tag}/docs/notes.txt",
        metadata='{"team": "qa"}',
    )
    assert made.object == "file" and made.filename == "Notes" and made.path == f"{tag}/docs/notes.txt"
    assert made.source == "upload" and made.size_bytes == 11 and made.metadata == {"team": "qa"}
    assert made.can_delete is True and made.content_type == "text/plain"

    assert client.files.get(made.id).filename == "Notes"
    assert b"".join(client.files.content(made.id)) == b"hello world"
    listed = client.files.list(prefix=f"{tag}/", order="asc")
    assert [f.id for f in listed.data] == [made.id] and listed.has_more is False
    assert made.id in [f.id for f in client.files.list(q=tag.upper()).data]
    assert made.id not in [f.id for f in client.files.list(source="runtime").data]
    folders = client.files.list(prefix=f"{tag}/", include="folders").folders
    assert [(f.segment, f.file_count, f.total_bytes) for f in folders] == [("docs", 1, 11)]

    renamed = client.files.update(made.id, filename="Renamed", metadata={"team": "ops"})
    assert renamed.filename == "Renamed" and renamed.metadata == {"team": "ops"}
    gone = client.files.delete(made.id)
    assert gone.deleted is True and gone.id == made.id and gone.object == "file"

    with pytest.raises(NotFoundError) as missing:
        client.files.get(made.id)
    assert code_of(missing) == "file.not_found" and error_of(missing)["reasonClass"] == "not_found"
    with pytest.raises(NotFoundError):
        b"".join(client.files.content(str(uuid.uuid4())))
    with pytest.raises(NotFoundError):
        client.files.delete(made.id)
    with pytest.raises(BadRequestError) as bad_path:
        client.files.upload(file=("x.txt", b"x"), path="../outside.txt")
    assert code_of(bad_path) == "storage_file.path_invalid"
    with pytest.raises(BadRequestError) as bad_meta:
        client.files.upload(file=("x.txt", b"x"), path=f"{tag}/x.txt", metadata="[1, 2]")
    assert code_of(bad_meta) == "request.invalid"
    other = client.files.upload(file=("y.txt", b"y"), path=f"{tag}/y.txt")
    with pytest.raises(BadRequestError):
        client.files.update(other.id, filename=" ")
    # An Idempotency-Key replays the first upload instead of making a second file.
    key = uuid.uuid4().hex
    first = client.files.upload(file=("k.txt", b"once"), path=f"{tag}/k.txt", idempotency_key=key)
    assert client.files.upload(file=("k.txt", b"once"), path=f"{tag}/k.txt", idempotency_key=key).id == first.id
    assert [f.id for f in client.files.list(prefix=f"{tag}/k").data] == [first.id]
    with pytest.raises(NotFoundError) as no_space:
        client.files.upload(file=("x.txt", b"x"), space_id=str(uuid.uuid4()))
    assert code_of(no_space) == "space.not_found"
    with pytest.raises(ApiError) as taken:  # 409 is not among upload's documented statuses: the SDK's base class
        client.files.upload(file=("y.txt", b"again"), path=f"{tag}/y.txt")
    assert taken.value.status_code == 409 and code_of(taken) == "storage_file.path_exists"


def download_and_use_input(cdp_url: str, page_url: str, input_path: str) -> str:
    """Download report.csv on page one, then hand `input_path` to a file input; the name the page sees."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.new_page()
        page.goto(page_url)
        with page.expect_download() as info:
            page.click("#dl")
        assert info.value.suggested_filename == "report.csv"
        page.set_content('<input type="file" id="pick">')
        cdp = context.new_cdp_session(page)
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#pick"})["nodeId"]
        cdp.send("DOM.setFileInputFiles", {"nodeId": node, "files": [input_path]})
        picked = page.evaluate(
            "document.querySelector('#pick').files[0].name + ':' + document.querySelector('#pick').files[0].size"
        )
        browser.close()
    return picked


def test_a_runs_files_download_recording_inputs_and_outputs(client, browsers, pages):
    created = client.browsers.create(name=unique("files"), wait=30)
    browsers(created.id)
    run = created.current_run
    space_file = client.files.upload(
        file=("input.csv", b"a,b\n1,2\n", "text/csv"),
        path=f"inputs/{uuid.uuid4().hex[:6]}.csv",
        space_id=created.space_id,
    )

    bound = client.runs.files.add(run.id, file_id=space_file.id)
    assert bound.object == "run.file" and bound.role == "input" and bound.file_id == space_file.id
    assert bound.binding.state == "ready" and bound.runtime_path.endswith(space_file.path)
    # The page gets the input from the path the binding names.
    picked = download_and_use_input(run.connections.cdp_url, f"{pages.url}/one.html", bound.runtime_path)
    assert picked == f"{space_file.path.rsplit('/', 1)[1]}:8"

    def download_listed():
        found = [f for f in client.runs.files.list(run.id, role="output").data if f.filename == "report.csv"]
        return found[0] if found else None

    download = eventually(download_listed, timeout=15)
    assert download.size == len(b"id,amount\n1,10\n2,32\n") and download.binding is None
    assert download.space_path == f"runs/{run.id}/download/report.csv"
    as_file = client.files.get(download.file_id)
    assert as_file.type == "download" and as_file.source == "runtime" and as_file.run_id == run.id
    assert b"".join(client.files.content(download.file_id)) == b"id,amount\n1,10\n2,32\n"
    assert download.file_id in [f.id for f in client.files.list(run_id=run.id).data]

    uploaded = client.runs.files.upload(run.id, file=("form.txt", b"form data"), filename="Form")
    assert uploaded.role == "input" and uploaded.space_path == "uploads/Form" and uploaded.binding.state == "ready"
    collected = client.runs.files.collect(
        run.id, runtime_path=uploaded.runtime_path, path=f"outputs/{uuid.uuid4().hex[:6]}.txt"
    )
    assert collected.role == "output" and collected.size == 9
    assert client.runs.files.retry(run.id, space_file.id).binding.state == "ready"
    removed = client.runs.files.remove(run.id, uploaded.file_id)
    assert removed.binding is None and client.files.get(uploaded.file_id).filename == "Form"
    assert client.runs.files.get(run.id, space_file.id).role == "input"

    with pytest.raises(NotFoundError) as unknown:
        client.runs.files.get(run.id, str(uuid.uuid4()))
    assert code_of(unknown) == "file.not_found"
    with pytest.raises(ConflictError) as output:
        client.runs.files.remove(run.id, download.file_id)
    assert code_of(output) == "resource.conflict"
    with pytest.raises(BadRequestError) as outside:
        client.runs.files.collect(run.id, runtime_path="../../etc/passwd")
    assert code_of(outside) == "runtime_file.path_invalid"
    with pytest.raises(NotFoundError) as absent:
        client.runs.files.collect(run.id, runtime_path="nothing-here.txt")
    assert code_of(absent) == "runtime_file.not_found"
    with pytest.raises(NotFoundError):
        client.runs.files.list(str(uuid.uuid4()))

    client.browsers.stop(created.id, wait=30)
    with pytest.raises(ConflictError) as ended:
        client.runs.files.add(run.id, file_id=space_file.id)
    assert code_of(ended) == "run.not_active"

    # The recording is finished after the run ends, and becomes one of its files.
    def recording_listed():
        return [f for f in client.runs.files.list(run.id).data if f.space_path.startswith(f"runs/{run.id}/recording/")]

    recording = eventually(recording_listed, timeout=90)[0]
    assert recording.role == "output" and recording.size > 0
    assert client.files.get(recording.file_id).can_delete is False
    with pytest.raises(ForbiddenError) as kept:
        client.files.delete(recording.file_id)
    assert code_of(kept) == "file.not_deletable"
    outputs = {f.file_id for f in client.runs.files.list(run.id, role="output").data}
    assert {download.file_id, collected.file_id, recording.file_id} <= outputs
    assert client.files.delete(download.file_id).deleted is True
    assert download.file_id not in {f.file_id for f in client.runs.files.list(run.id).data}

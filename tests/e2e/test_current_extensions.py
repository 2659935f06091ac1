"""Browser extensions through the official 0.3 client, unchanged, against a real server and Chromium:
an uploaded extension (zipped or packed) is loaded into the browsers that name it and its content
script runs; list, get, rename, delete (refused while a running browser uses it); bad packages and
other accounts' ids refused with their documented codes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from bctrl import Bctrl
from bctrl._generated.errors import BadRequestError, ConflictError, NotFoundError
from bctrl._generated.types.browser_extension import BrowserExtension
from playwright.sync_api import sync_playwright

from tests.e2e.extension_packages import crx_of, manifest, marker_zip, zip_of
from tests.e2e.test_current_sdk import code_of, error_of, unique
from tests.support import PageServer

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


class UploadRefused(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body

    @property
    def code(self) -> str:
        return self.body["error"]["code"]


def upload(client: Bctrl, data: bytes, filename: str = "ext.zip", name: str | None = None) -> BrowserExtension:
    """A multipart create through the client's own transport (the 0.3 wheel declares the multipart
    body, `BrowserExtensionCreateRequest2`, but its `create` method sends the JSON one)."""
    response = client._client_wrapper.httpx_client.request(
        "v1/browser/extensions",
        method="POST",
        data={"name": name} if name is not None else {},
        files={"file": (filename, data, "application/octet-stream")},
        force_multipart=True,
    )
    if response.status_code != 201:
        raise UploadRefused(response.status_code, response.json())
    return BrowserExtension.model_validate(response.json())


@pytest.fixture
def extensions(client):
    """Extensions a test uploads (by id), deleted in teardown (their browsers are deleted first)."""
    made: list[str] = []
    yield made.append
    for extension_id in made:
        try:
            client.browser.extensions.delete(extension_id)
        except (NotFoundError, ConflictError):
            pass


def marks_of(cdp_url: str, url: str) -> dict[str, str]:
    """What the extension's content script wrote on the page at `url` (nothing when it did not run)."""
    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        page = context.new_page()
        page.goto(url)
        found = page.evaluate("() => ({...document.documentElement.dataset})")
        page.close()
        browser.close()
    return found


def test_unpacked_extension_runs_in_the_browser_and_cannot_be_deleted_while_it_runs(
    client, browsers, extensions, pages
):
    ext = upload(client, marker_zip(folder="marker/"), "marker.zip")
    extensions(ext.id)
    assert ext.object == "extension" and ext.name == "Marker" and ext.version == "1.2.3"
    assert ext.format == "zip" and ext.manifest_version == 3 and ext.verification_status == "ready"
    assert ext.permissions == ["storage"] and ext.host_permissions == ["http://127.0.0.1/*"]
    assert len(ext.chrome_extension_id) == 32 and ext.browser_count == 0 and ext.size_bytes > 0
    assert len(ext.content_hash) == 64

    created = client.browsers.create(name=unique("ext"), extensions=[ext.id], wait=30)
    browsers(created.id)
    assert created.status == "running" and created.extensions == [ext.id]
    marks = marks_of(created.current_run.connections.cdp_url, f"{pages.url}/index.html")
    # The content script ran, under the id the API gave (the kept manifest carries a key).
    assert marks == {"ext": "loaded", "extId": ext.chrome_extension_id}
    assert client.browser.extensions.get(ext.id).browser_count == 1

    with pytest.raises(ConflictError) as exc:
        client.browser.extensions.delete(ext.id)
    assert code_of(exc) == "browser_extension.in_use" and created.id in error_of(exc)["details"]["browserIds"]
    assert client.browser.extensions.get(ext.id).id == ext.id  # still there

    client.browsers.stop(created.id, wait=30)
    deleted = client.browser.extensions.delete(ext.id)
    assert deleted.deleted is True and deleted.id == ext.id and deleted.object == "extension"
    with pytest.raises(NotFoundError) as exc:
        client.browser.extensions.get(ext.id)
    assert code_of(exc) == "browser_extension.not_found"
    # The stopped browser still names it: its next start fails saying so.
    with pytest.raises(Exception) as exc:
        client.browsers.start(created.id, wait=30)
    assert code_of(exc) == "browser_extension.not_found"


def test_packed_crx_loads_with_the_id_its_key_gives(client, browsers, extensions, pages):
    packed, expected_id = crx_of(marker_zip("Packed"))
    ext = upload(client, packed, "marker.crx")
    extensions(ext.id)
    assert ext.format == "crx" and ext.name == "Packed" and ext.chrome_extension_id == expected_id

    created = client.browsers.create(name=unique("crx"), extensions=[ext.id], wait=30)
    browsers(created.id)
    marks = marks_of(created.current_run.connections.cdp_url, f"{pages.url}/one.html")
    assert marks == {"ext": "loaded", "extId": expected_id}


def test_browser_without_extensions_runs_none(client, browsers, pages):
    created = client.browsers.create(name=unique("plain"), wait=30)
    browsers(created.id)
    assert created.extensions == []
    assert marks_of(created.current_run.connections.cdp_url, f"{pages.url}/index.html") == {}


def test_list_get_rename(client, extensions):
    tag = unique("list")
    first = upload(client, marker_zip(), name=f"{tag} one")
    extensions(first.id)
    packed, _ = crx_of(marker_zip())
    second = upload(client, packed, "two.crx", name=f"{tag} two")
    extensions(second.id)

    listed = client.browser.extensions.list(q=tag)
    assert [e.id for e in listed.data] == [second.id, first.id] and listed.has_more is False
    oldest = client.browser.extensions.list(q=tag, order="asc", limit=1)
    assert [e.id for e in oldest.data] == [first.id] and oldest.has_more is True
    after = client.browser.extensions.list(q=tag, order="asc", limit=1, cursor=oldest.next_cursor)
    assert [e.id for e in after.data] == [second.id]
    assert [e.id for e in client.browser.extensions.list(q=tag, format="crx").data] == [second.id]
    assert {e.id for e in client.browser.extensions.list(q=tag, source="upload").data} == {first.id, second.id}
    assert client.browser.extensions.list(q=tag, source="url").data == []

    renamed = client.browser.extensions.update(first.id, name="Renamed")
    assert renamed.name == "Renamed" and renamed.version == first.version
    assert client.browser.extensions.get(first.id).name == "Renamed"
    with pytest.raises(BadRequestError):
        client.browser.extensions.update(first.id, name="")
    with pytest.raises(NotFoundError) as exc:
        client.browser.extensions.get("00000000-0000-7000-8000-000000000000")
    assert code_of(exc) == "browser_extension.not_found"


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (zip_of({"readme.txt": "not an extension"}), "none.zip", "browser_extension.invalid_package"),
        (
            zip_of({"manifest.json": json.dumps(manifest()), "mark.js": "x", "../evil": "x"}),
            "evil.zip",
            "browser_extension.invalid_package",
        ),
        (zip_of({"/etc/evil": "x", "manifest.json": "{}"}), "abs.zip", "browser_extension.invalid_package"),
        (zip_of({"manifest.json": "{not json"}), "json.zip", "browser_extension.invalid_package"),
        (zip_of({"manifest.json": json.dumps(manifest())}), "nojs.zip", "browser_extension.invalid_package"),
        (
            zip_of({"manifest.json": json.dumps({**manifest(), "manifest_version": 1}), "mark.js": "x"}),
            "mv1.zip",
            "browser_extension.invalid_package",
        ),
        (
            zip_of({"manifest.json": json.dumps({**manifest(), "manifest_version": 2}), "mark.js": "x"}),
            "mv2.zip",
            "browser_extension.invalid_package",
        ),
        (b"Cr24" + b"\x02\x00\x00\x00" + b"\x00" * 16, "old.crx", "browser_extension.unsupported_format"),
        (b"just some bytes", "text.zip", "browser_extension.unsupported_format"),
        (b"", "empty.zip", "browser_extension.file_empty"),
        (
            zip_of({"manifest.json": json.dumps(manifest()), "mark.js": "x", **{f"f{i}": "" for i in range(5001)}}),
            "many.zip",
            "browser_extension.archive_limit_exceeded",
        ),
    ],
    ids=[
        "no-manifest",
        "dot-dot",
        "absolute",
        "bad-json",
        "missing-script",
        "mv1",
        "mv2",
        "crx2",
        "junk",
        "empty",
        "entries",
    ],
)
def test_bad_packages_are_refused_and_nothing_is_kept(client, data, filename, code):
    before = len(client.browser.extensions.list(limit=100).data)
    with pytest.raises(UploadRefused) as exc:
        upload(client, data, filename)
    assert exc.value.status == 400 and exc.value.code == code, exc.value.body
    assert len(client.browser.extensions.list(limit=100).data) == before


def test_a_symlink_entry_is_refused(client):
    import io
    import stat
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest()))
        archive.writestr("mark.js", "x")
        link = zipfile.ZipInfo("secrets")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")
    with pytest.raises(UploadRefused) as exc:
        upload(client, buffer.getvalue(), "link.zip")
    assert (
        exc.value.code == "browser_extension.invalid_package" and "symbolic link" in exc.value.body["error"]["message"]
    )


def test_no_file_part(client):
    response = client._client_wrapper.httpx_client.request(
        "v1/browser/extensions", method="POST", data={"name": "x"}, force_multipart=True
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "browser_extension.file_required"


@pytest.fixture
def package_site():
    with tempfile.TemporaryDirectory() as root:
        server = PageServer(Path(root))
        server.root = Path(root)
        yield server
        server.close()


def test_import_from_a_url(live, client, extensions, package_site):
    packed, expected_id = crx_of(marker_zip("Imported"))
    (package_site.root / "imported.crx").write_bytes(packed)
    url = f"{package_site.url}/imported.crx"
    ext = client.browser.extensions.create(url=url)
    extensions(ext.id)
    assert ext.name == "Imported" and ext.source_url == url and ext.chrome_extension_id == expected_id
    assert [e.id for e in client.browser.extensions.list(source="url", q="Imported").data] == [ext.id]

    with pytest.raises(BadRequestError) as exc:
        client.browser.extensions.create(url="ftp://example.com/x.crx")
    assert code_of(exc) == "browser_extension.import_url_invalid"
    with pytest.raises(BadRequestError) as exc:
        client.browser.extensions.create(url="https://chromewebstore.google.com/detail/no-id-here")
    assert code_of(exc) == "browser_extension.import_url_invalid"
    with pytest.raises(BadRequestError) as exc:
        client.browser.extensions.create(url=f"{package_site.url}/missing.crx")
    assert code_of(exc) == "browser_extension.import_failed"
    # Fetched through the browsers' egress proxy: the control plane itself is out of reach.
    with pytest.raises(BadRequestError) as exc:
        client.browser.extensions.create(url=f"{live.url}/openapi.json")
    assert code_of(exc) == "browser_extension.import_failed" and "403" in error_of(exc)["message"]
    (package_site.root / "notes.zip").write_bytes(zip_of({"a.txt": "x"}))
    with pytest.raises(BadRequestError) as exc:
        client.browser.extensions.create(url=f"{package_site.url}/notes.zip")
    assert code_of(exc) == "browser_extension.invalid_package"


def test_ids_at_create_must_be_the_callers_own(client, other_client, browsers, extensions):
    theirs = upload(other_client, marker_zip("Theirs"))
    try:
        with pytest.raises(NotFoundError) as exc:
            client.browsers.create(name=unique("stolen"), extensions=[theirs.id])
        assert code_of(exc) == "browser_extension.not_found"
        assert error_of(exc)["details"]["extensionIds"] == [theirs.id]
        with pytest.raises(NotFoundError):
            client.browser.extensions.get(theirs.id)
        with pytest.raises(NotFoundError):
            client.browser.extensions.delete(theirs.id)
        assert theirs.id not in {e.id for e in client.browser.extensions.list(limit=100).data}
    finally:
        other_client.browser.extensions.delete(theirs.id)

    mine = upload(client, marker_zip())
    extensions(mine.id)
    with pytest.raises(BadRequestError) as exc:
        client.browsers.create(name=unique("bad"), extensions=["not-an-id"])
    assert code_of(exc) == "browser_extension.invalid_ids"
    with pytest.raises(BadRequestError) as exc:
        client.browsers.create(name=unique("twice"), extensions=[mine.id, mine.id])
    assert code_of(exc) == "browser_extension.duplicate_ids"

    # At update too: checked, kept for the next start, and cleared with an empty list.
    created = client.browsers.create(name=unique("later"), wait=30)
    browsers(created.id)
    assert client.browsers.update(created.id, extensions=[mine.id]).extensions == [mine.id]
    assert client.browser.extensions.get(mine.id).browser_count == 1
    with pytest.raises(NotFoundError) as exc:
        client.browsers.update(created.id, extensions=["00000000-0000-7000-8000-000000000000"])
    assert code_of(exc) == "browser_extension.not_found"
    assert client.browsers.get(created.id).extensions == [mine.id]
    assert client.browsers.update(created.id, extensions=[]).extensions == []

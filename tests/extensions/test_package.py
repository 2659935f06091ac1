"""Package checks (app/extensions/package.py) on archives built here: what a hostile or broken upload
is refused with, and what a good one is kept as (its files at the root, its manifest carrying a key
from which Chromium derives the id the API reports)."""

from __future__ import annotations

import base64
import io
import json
import stat
import struct
import zipfile

import pytest

from app.extensions import package
from app.extensions.package import PackageError
from tests.e2e.extension_packages import crx_of, manifest, marker_zip, zip_of


def check(tmp_path, data: bytes) -> package.Package:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return package.inspect(path)


def refused(tmp_path, data: bytes) -> PackageError:
    with pytest.raises(PackageError) as exc:
        check(tmp_path, data)
    return exc.value


def test_zip_bomb_is_refused_by_what_it_inflates_to(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_UNPACKED_BYTES", 1024 * 1024)
    # 4 MiB of zeros deflates to a few KiB; the declared size is rewritten to claim 1 byte.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest()))
        archive.writestr("mark.js", "x")
        archive.writestr("zeros.bin", b"\0" * (4 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 64 * 1024
    error = refused(tmp_path, data)
    assert error.code == "browser_extension.archive_limit_exceeded" and error.details["limit"] == "maxUnpackedBytes"


def test_one_large_entry_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_ENTRY_BYTES", 1000)
    data = zip_of({"manifest.json": json.dumps(manifest()), "mark.js": "x" * 2000})
    assert refused(tmp_path, data).details["limit"] == "maxEntryBytes"


def test_entries_are_counted_before_anything_is_inflated(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_ENTRIES", 3)
    data = zip_of({"manifest.json": json.dumps(manifest()), "mark.js": "x", "a": "", "b": ""})
    assert refused(tmp_path, data).details["limit"] == "maxEntries"


@pytest.mark.parametrize(
    "name", ["../evil", "a/../../evil", "/abs", "C:/win", "a\\b", "a//b", "./x", "a/./b"], ids=repr
)
def test_entry_names_must_be_plain_relative_paths(tmp_path, name):
    data = zip_of({"manifest.json": json.dumps(manifest()), "mark.js": "x", name: "x"})
    assert refused(tmp_path, data).code == "browser_extension.invalid_package"


def test_links_devices_duplicates_and_encryption_are_refused(tmp_path):
    def with_entry(info: zipfile.ZipInfo, data: bytes = b"x", flag: int = 0) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("manifest.json", json.dumps(manifest()))
            archive.writestr("mark.js", "x")
            archive.writestr(info, data)
        raw = bytearray(buffer.getvalue())
        if flag:  # set the flag bit in the last entry's local and central headers
            for sig in (b"PK\x03\x04", b"PK\x01\x02"):
                at = raw.rfind(sig)
                offset = 6 if sig == b"PK\x03\x04" else 8
                (bits,) = struct.unpack_from("<H", raw, at + offset)
                struct.pack_into("<H", raw, at + offset, bits | flag)
        return bytes(raw)

    link = zipfile.ZipInfo("link")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    assert "symbolic link" in refused(tmp_path, with_entry(link, b"/etc/passwd")).message
    fifo = zipfile.ZipInfo("fifo")
    fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
    assert "not a file" in refused(tmp_path, with_entry(fifo)).message
    assert "twice" in refused(tmp_path, with_entry(zipfile.ZipInfo("mark.js"))).message
    assert "encrypted" in refused(tmp_path, with_entry(zipfile.ZipInfo("secret"), flag=1)).message


@pytest.mark.parametrize(
    ("manifest_text", "why"),
    [
        ("[]", "not a JSON object"),
        ("{", "not valid JSON"),
        (json.dumps({**manifest(), "manifest_version": 2}), "no longer loaded"),
        (json.dumps({**manifest(), "manifest_version": "3"}), "manifest_version 3"),
        (json.dumps({**manifest(), "version": "1.2.3.4.5"}), "version"),
        (json.dumps({**manifest(), "version": "70000"}), "version"),
        (json.dumps({**manifest(), "name": " "}), "needs a name"),
        (json.dumps({**manifest(), "key": "%%%"}), "not base64"),
        (json.dumps({**manifest(), "background": {"service_worker": "sw.js"}}), "'sw.js'"),
    ],
)
def test_manifest_must_describe_a_loadable_extension(tmp_path, manifest_text, why):
    error = refused(tmp_path, zip_of({"manifest.json": manifest_text, "mark.js": "x"}))
    assert error.code == "browser_extension.invalid_package" and why in error.message


def test_manifest_in_a_folder_is_found_and_localised_names_resolved(tmp_path):
    localised = {**manifest("__MSG_appName__"), "default_locale": "en"}
    data = zip_of(
        {
            "ext/manifest.json": json.dumps(localised),
            "ext/mark.js": "x",
            "ext/_locales/en/messages.json": json.dumps({"appName": {"message": "Localised"}}),
        }
    )
    found = check(tmp_path, data)
    assert found.name == "Localised" and found.format == "zip" and found.version == "1.2.3"
    assert set(found.entries.values()) == {"manifest.json", "mark.js", "_locales/en/messages.json"}
    assert found.host_permissions == ["http://127.0.0.1/*"] and found.permissions == ["storage"]
    # Two folders, or none with the manifest: not an extension.
    two = zip_of({"a/manifest.json": json.dumps(manifest()), "a/mark.js": "x", "b/x": "y"})
    assert "manifest.json is missing" in refused(tmp_path, two).message


def test_crx3_header_is_read_and_its_key_kept(tmp_path):
    packed, expected = crx_of(marker_zip("Packed"))
    found = check(tmp_path, packed)
    assert found.format == "crx" and package.extension_id(found.public_key) == expected

    kept, unpacked = tmp_path / "kept.zip", tmp_path / "unpacked"
    package.normalize(found, tmp_path / "upload", kept)
    unpacked.mkdir()
    package.unpack(kept, unpacked)
    stored = json.loads((unpacked / "manifest.json").read_text())
    assert package.extension_id(base64.b64decode(stored["key"])) == expected
    assert sorted(p.name for p in unpacked.iterdir()) == ["manifest.json", "mark.js"]


def test_bad_crx_headers(tmp_path):
    packed, _ = crx_of(marker_zip())
    header_length = struct.unpack("<I", packed[8:12])[0]
    assert refused(tmp_path, packed[: 12 + header_length // 2]).code == "browser_extension.invalid_package"
    version2 = packed[:4] + struct.pack("<I", 2) + packed[8:]
    assert refused(tmp_path, version2).code == "browser_extension.unsupported_format"
    huge = packed[:8] + struct.pack("<I", 2**31) + packed[12:]
    assert "header is larger" in refused(tmp_path, huge).message
    # An id that matches none of the header's keys.
    # signed_header_data (field 10000, 18 bytes) holding crx_id (field 1, 16 bytes): at the header's end.
    at = 12 + packed[12 : 12 + header_length].rfind(b"\x82\xf1\x04\x12\x0a\x10")
    assert at == 12 + header_length - 22
    forged = packed[: at + 6] + bytes(16) + packed[at + 22 :]
    assert "matches none" in refused(tmp_path, forged).message
    garbled = packed[:12] + b"\xff" * header_length + packed[12 + header_length :]
    assert "not a valid protobuf" in refused(tmp_path, garbled).message


def test_unpack_refuses_what_inspect_refuses(tmp_path):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(zip_of({"../x": "y"}))
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError):
        package.unpack(evil, tmp_path / "out")
    assert not (tmp_path / "x").exists()

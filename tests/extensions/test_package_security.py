"""Security of extension packages: no permission that takes the browser past its egress policy, and no
archive accepted at upload that cannot be unpacked at launch."""

from __future__ import annotations

import json

import pytest

from app.extensions import package
from app.extensions.package import PackageError
from tests.e2e.extension_packages import manifest, zip_of


def _refused(tmp_path, data: bytes) -> PackageError:
    path = tmp_path / "pkg"
    path.write_bytes(data)
    with pytest.raises(PackageError) as caught:
        package.inspect(path)
    return caught.value


@pytest.mark.parametrize("key", ["permissions", "optional_permissions"])
def test_the_proxy_permission_is_refused(tmp_path, key):
    text = json.dumps(manifest("Direct", content_scripts=[], **{key: ["storage", "proxy"]}))
    error = _refused(tmp_path, zip_of({"manifest.json": text}))
    assert error.code == "browser_extension.invalid_package" and error.details["refused"] == ["proxy"]


def test_a_file_that_is_also_a_folder_is_refused(tmp_path):
    text = json.dumps(manifest("Nested", content_scripts=[]))
    error = _refused(tmp_path, zip_of({"manifest.json": text, "a": "file", "a/b": "nested"}))
    assert error.code == "browser_extension.invalid_package" and error.details["entry"] == "a"
    error = _refused(tmp_path, zip_of({"manifest.json": text, "x/y/z": "deep", "x/y": "file"}))
    assert error.details["entry"] == "x/y"

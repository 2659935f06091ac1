"""Browser extensions on the Docker driver: the uploaded extension is put in the container (a volume
filled before it starts) and its content script runs there, under the id the API gives."""

from __future__ import annotations

import uuid

from bctrl._generated.errors import ConflictError, NotFoundError

from tests.docker.conftest import containers_of, gone
from tests.e2e.extension_packages import crx_of, marker_zip
from tests.e2e.test_current_extensions import marks_of, upload


def test_extension_content_script_runs_in_the_container(dclient, engine, pages):
    unpacked = upload(dclient, marker_zip("Docker marker", folder="marker/"), "marker.zip")
    packed, packed_id = crx_of(marker_zip("Docker packed", attr="packed"))
    crx = upload(dclient, packed, "marker.crx")
    browser_id = None
    try:
        created = dclient.browsers.create(
            name=f"docker-ext-{uuid.uuid4().hex[:6]}", extensions=[unpacked.id, crx.id], wait=60
        )
        browser_id = created.id
        assert created.status == "running" and created.extensions == [unpacked.id, crx.id]
        [container] = containers_of(engine, created.id)
        mounts = [m for m in container.attrs["Mounts"] if m["Destination"] == "/extensions"]
        assert len(mounts) == 1 and mounts[0]["Type"] == "volume"
        cdp_url = created.current_run.connections.cdp_url
        marks = marks_of(cdp_url, f"{pages.url}/index.html")
        # Both content scripts ran, each under the id the API gave.
        assert marks == {
            "ext": "loaded",
            "extId": unpacked.chrome_extension_id,
            "packed": "loaded",
            "packedId": packed_id,
        }
        dclient.browsers.stop(created.id, wait=60)
        assert gone(engine, container.id)
    finally:
        if browser_id:
            try:
                dclient.browsers.delete(browser_id)
            except NotFoundError:
                pass
        for ext in (unpacked, crx):
            try:
                dclient.browser.extensions.delete(ext.id)
            except (NotFoundError, ConflictError):
                pass

"""What the pool decides without a browser: which launches it may serve, and how a runtime's file area
changes hands between browser uids (only what browsers own, never through a link)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from app.core.driver import LaunchSpec
from app.drivers.local import UID_BASE
from app.drivers.viewport import DEFAULT_VIEWPORT
from app.pool.handover import hand_over
from app.pool.matching import DEFAULT_CLASS, class_of

RID = uuid.uuid4()


def test_only_the_default_configuration_is_served():
    assert class_of(LaunchSpec(runtime_id=RID, viewport=DEFAULT_VIEWPORT)) == DEFAULT_CLASS
    assert class_of(LaunchSpec(runtime_id=RID, traffic={"block": []})) == DEFAULT_CLASS  # armed after the start
    for other in (
        {"viewport": (1024, 700)},
        {"window_size": (1280, 800)},
        {"headless": False},
        {"proxy": "http://user:pw@127.0.0.1:3128"},
        {"extensions": ("/tmp/ext",)},
        {"restore_from": Path("/tmp/state.tar.gz")},
        {"locale": "fr-FR"},
        {"user_agent": "Bot/1"},
        {"web_rtc_proxy_only": True},
    ):
        assert class_of(LaunchSpec(runtime_id=RID, **other)) is None, other


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_a_file_area_changes_hands_between_browser_uids_only(tmp_path):
    old, new = UID_BASE + 11, UID_BASE + 22
    area = tmp_path / "files" / "rt"
    (area / "sub").mkdir(parents=True)
    for path in (area, area / "sub"):
        os.chown(path, old, old)
    written = area / "sub" / "written.txt"
    written.write_text("by the browser")
    os.chown(written, old, old)
    staged = area / "staged.txt"
    staged.write_text("by the server")  # root's: stays root's
    outside = tmp_path / "outside.txt"
    outside.write_text("not the browser's")
    os.chown(outside, old, old)
    (area / "link").symlink_to(outside)  # a link out of the area is not followed
    os.link(outside, area / "hard")  # a file with another name elsewhere is left alone

    hand_over(area, new)

    assert os.stat(area).st_uid == new and oct(os.stat(area).st_mode & 0o777) == "0o700"
    assert os.stat(area / "sub").st_uid == new and os.stat(written).st_uid == new
    assert os.stat(staged).st_uid == 0
    assert os.stat(outside).st_uid == old

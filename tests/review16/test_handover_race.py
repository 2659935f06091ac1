"""The pool's hand-over of a file area changes the owner of the inode it checked, not of whatever the
name leads to a moment later: a browser uid still running could otherwise swap a checked file for a hard
link to a file outside its area (on a host with fs.protected_hardlinks=0, e.g. /etc/shadow) and have it
given away. The swap is made here right after the hand-over's first look at the name."""

from __future__ import annotations

import os

import pytest

from app.drivers.local import UID_BASE
from app.pool import handover

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")

OLD, NEW = UID_BASE + 31, UID_BASE + 32


def _area(tmp_path):
    area = tmp_path / "files" / "rt"
    area.mkdir(parents=True)
    os.chown(area, OLD, OLD)
    return area


def test_a_name_swapped_for_a_hard_link_after_the_check_gives_nothing_away(tmp_path, monkeypatch):
    area = _area(tmp_path)
    victim = area / "victim"
    victim.write_text("the browser's")
    os.chown(victim, OLD, OLD)
    host_file = tmp_path / "host-secret"  # root's, outside the area, same filesystem
    host_file.write_text("root's")
    swapped = []

    def swap_after_first_look(real):
        def call(path, *args, **kwargs):
            result = real(path, *args, **kwargs)
            if path == "victim" and not swapped:
                swapped.append(True)
                os.unlink("victim", dir_fd=kwargs["dir_fd"])
                os.link(host_file, "victim", dst_dir_fd=kwargs["dir_fd"])
            return result

        return call

    monkeypatch.setattr(os, "stat", swap_after_first_look(os.stat))
    monkeypatch.setattr(os, "open", swap_after_first_look(os.open))
    handover.hand_over(area, NEW)
    monkeypatch.undo()

    assert swapped, "the hand-over looked at the file"
    assert os.stat(host_file).st_uid == 0


def test_only_single_named_files_and_directories_change_hands(tmp_path):
    area = _area(tmp_path)
    outside = tmp_path / "outside"
    outside.write_text("the browser's, elsewhere")
    os.chown(outside, OLD, OLD)
    os.link(outside, area / "hard")
    (area / "link").symlink_to(outside)
    os.lchown(area / "link", OLD, OLD)
    os.mkfifo(area / "fifo")  # opened without waiting for a writer, left alone
    os.chown(area / "fifo", OLD, OLD)
    (area / "dir").mkdir()
    os.chown(area / "dir", OLD, OLD)
    (area / "dir" / "own").write_text("x")
    os.chown(area / "dir" / "own", OLD, OLD)

    handover.hand_over(area, NEW)

    assert os.stat(outside).st_uid == OLD
    assert os.lstat(area / "link").st_uid == OLD
    assert os.stat(area / "fifo").st_uid == OLD
    assert os.stat(area / "dir").st_uid == NEW and os.stat(area / "dir" / "own").st_uid == NEW

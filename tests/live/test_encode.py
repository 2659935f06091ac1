"""The recording encoder with the real ffmpeg: frames of any size, down to a page's first 1x1 paint."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from app.live.recorder import _encode, frame_path, jpeg_size

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _frame(path, size: str) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64",
            "-vf",
            f"scale={size.replace('x', ':')}",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuvj444p",
            str(path),
        ],
        check=True,
    )


@pytest.mark.parametrize("sizes", [["1x1", "640x480"], ["641x479", "1280x720", "3x3"]])
async def test_frames_of_any_size_encode(tmp_path, sizes):
    entries = [{"seq": i + 1, "t": i * 500} for i in range(len(sizes))]
    for entry, size in zip(entries, sizes, strict=True):
        _frame(frame_path(tmp_path, entry["seq"]), size)
    assert jpeg_size(frame_path(tmp_path, 1).read_bytes()) == tuple(int(v) for v in sizes[0].split("x"))
    output = tmp_path / "out.webm"
    await _encode(shutil.which("ffmpeg"), tmp_path, entries, entries[-1]["t"] + 500, output)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "json",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(json.loads(probe.stdout)["streams"][0]["nb_read_frames"]) >= len(sizes)

"""The switches every browser starts with (app/drivers/chromium.py, app/drivers/local.py chromium_args)."""

from __future__ import annotations

import uuid
from pathlib import Path

from app.core.driver import LaunchSpec
from app.drivers.chromium import behaviour_flags, merge_features, user_agent
from app.drivers.local import chromium_args
from app.drivers.viewport import Chrome


def test_feature_lists_are_folded_into_one_switch_each():
    merged = merge_features(
        ["--a", "--disable-features=X,Y", "--enable-features=Z,Y", "--b", "--disable-features=Y,W", "about:blank"]
    )
    assert [a for a in merged if a.startswith("--disable-features")] == ["--disable-features=X,Y,W"]
    # Disabled wins over enabled; everything else keeps its order.
    assert [a for a in merged if a.startswith("--enable-features")] == ["--enable-features=Z"]
    assert [a for a in merged if not a.startswith("--") or a in ("--a", "--b")] == ["--a", "--b", "about:blank"]


def test_every_browser_starts_without_back_forward_cache_and_with_one_feature_list():
    flags = behaviour_flags()
    assert "--disable-back-forward-cache" in flags and "--disable-renderer-backgrounding" in flags
    disabled = [f for f in flags if f.startswith("--disable-features=")]
    assert len(disabled) == 1 and "BackForwardCache" in disabled[0].split("=", 1)[1].split(",")
    assert not any("--headless" in f for f in flags)


def test_headless_and_headful_arguments():
    spec = LaunchSpec(runtime_id=uuid.uuid4(), viewport=(1280, 720))
    agent = user_agent("156")
    headless = chromium_args(Path("/p"), spec, False, window=(1280, 807), user_agent=agent)
    assert "--headless=new" in headless and "--test-type" not in headless
    assert "--window-size=1280,807" in headless and f"--user-agent={agent}" in headless
    assert "HeadlessChrome" not in agent and "Chrome/156.0.0.0" in agent
    headful = chromium_args(Path("/p"), LaunchSpec(runtime_id=uuid.uuid4(), headless=False), False)
    assert not any(a.startswith("--headless") for a in headful) and "--test-type" in headful
    assert headful[-1] == "about:blank"


def test_window_is_the_viewport_plus_the_chrome_measured():
    chrome = Chrome()
    first = chrome.window_size("/usr/bin/chromium", True, (1024, 700))
    assert first[0] >= 1024 and first[1] >= 700  # a guess until measured
    chrome.learn("/usr/bin/chromium", True, (0, 90))
    assert chrome.window_size("/usr/bin/chromium", True, (1024, 700)) == (1024, 790)
    assert chrome.window_size("/usr/bin/chromium", False, (1024, 700)) == first  # headful measured apart
    chrome.learn("/usr/bin/chromium", True, None)  # nothing measured: kept
    assert chrome.window_size("/usr/bin/chromium", True, (800, 600)) == (800, 690)

"""How every browser of this server is started, whatever the driver: its switches, its user agent.

Both drivers pass `behaviour_flags()`; the Docker image's start script adds only what is particular to
the container (its ports, its profile, `--no-sandbox`). Chromium honours one `--disable-features`
and one `--enable-features` switch (the last of each), so `merge_features` folds every list a launch
collects (ours, an extension's, a traffic rule's) into one of each.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
from collections.abc import Iterable

# Features off for every browser. From Playwright's own Chromium switches (a client that works against
# a Chromium Playwright launches must work against ours), plus what keeps our browsers quiet.
DISABLED_FEATURES = (
    # Background traffic to Google's services: this machine reaches nothing but package registries, and
    # a user's browser should not phone home anyway.
    "Translate",
    "OptimizationHints",
    "MediaRouter",
    "DialMediaRouteProvider",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    # The omnibox popups of new headless are page targets (chrome://omnibox-popup.top-chrome/): a
    # client's `contexts[0].pages[0]` would be one of them.
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "WebUIOmniboxFullPopup",
    "LensOverlay",
    # As Playwright: beforeunload checks that block navigations, paint holding (a page looks blank
    # until its first contentful paint), HTTPS upgrades of plain-HTTP navigations, third-party storage
    # partitioning, and the CORS redirect restart that aborts intercepted preflighted redirects.
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "PaintHolding",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    # History navigations load the page again (see --disable-back-forward-cache).
    "BackForwardCache",
    # A sign-in form makes Chromium ask Google about the form, and a submit checks the typed password
    # against its leak service (a hash prefix of the credentials would leave the machine).
    "AutofillServerCommunication",
    "PasswordLeakDetection",
)
# WebMCP: pages may register tools (`document.modelContext`) and DevTools lists and calls them, which a
# run's webMcpUrl serves (app/mcp/webmcp.py).
ENABLED_FEATURES = ("SkipListAccountsWithoutGaiaCookies", "WebMCPTesting", "DevToolsWebMCPSupport")

# Keep the browser off the network for its own services, and behave as a Chromium that Playwright
# launches: without these, `page.go_back()` through a CDP client waits for a load event that a page
# restored from the back-forward cache never fires, and a background tab's timers crawl.
BEHAVIOUR_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--no-service-autorun",
    "--disable-search-engine-choice-screen",
    "--disable-field-trial-config",
    "--disable-component-extensions-with-background-pages",
    # Chromium 156 calls home despite the switches above (component updates, Gaia account checks,
    # network time): its Google service endpoints point at 0.0.0.0, which nothing ever answers.
    "--component-updater=url-source=http://0.0.0.0:9/",
    "--gaia-url=http://0.0.0.0:9/",
    "--google-apis-url=http://0.0.0.0:9/",
    "--lso-url=http://0.0.0.0:9/",
    "--autofill-server-url=http://0.0.0.0:9/",
    # History and reloads as on a Playwright-launched Chromium.
    "--disable-back-forward-cache",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-ipc-flooding-protection",
    "--disable-hang-monitor",
    "--disable-prompt-on-repost",
    "--allow-pre-commit-input",
    "--force-color-profile=srgb",
    # No "unsupported command-line flag" bar above the page: it would take 56 px of the viewport.
    "--disable-infobars",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
)


def merge_features(args: Iterable[str]) -> list[str]:
    """`args` with every --disable-features / --enable-features folded into one of each (at the end),
    names kept in first-seen order; a feature both enabled and disabled stays disabled."""
    rest: list[str] = []
    lists: dict[str, list[str]] = {"--disable-features": [], "--enable-features": []}
    for arg in args:
        name, _, value = arg.partition("=")
        if name in lists:
            for feature in value.split(","):
                if feature and feature not in lists[name]:
                    lists[name].append(feature)
        else:
            rest.append(arg)
    disabled = lists["--disable-features"]
    enabled = [f for f in lists["--enable-features"] if f not in disabled]
    merged = [f"--disable-features={','.join(disabled)}"] if disabled else []
    if enabled:
        merged.append(f"--enable-features={','.join(enabled)}")
    return rest + merged


def behaviour_flags() -> list[str]:
    """Every switch a browser of ours gets whatever its driver (features merged)."""
    return merge_features(
        [
            *BEHAVIOUR_FLAGS,
            f"--disable-features={','.join(DISABLED_FEATURES)}",
            f"--enable-features={','.join(ENABLED_FEATURES)}",
        ]
    )


def user_agent(major: str) -> str:
    """The user agent of a desktop Chrome of that major version on Linux: what headed Chromium sends,
    never `HeadlessChrome` (sites treat that one differently)."""
    return f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"


VERSION_TIMEOUT = 5.0


@functools.cache
def binary_major_version(binary: str) -> str | None:
    """The major version `binary --version` reports (Chromium 156.0.x -> "156"), asked once per binary."""
    # In a process group of its own, killed whole afterwards: a wrapper script that forks (or hangs)
    # leaves nothing behind, and a launch waits at most VERSION_TIMEOUT for it.
    try:
        proc = subprocess.Popen(
            [binary, "--version"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            start_new_session=True,
        )
    except OSError:
        return None
    try:
        out, _ = proc.communicate(timeout=VERSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        out = ""
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    found = re.search(r"(\d+)\.\d+\.\d+", out or "")
    return found.group(1) if found else None

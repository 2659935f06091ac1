"""Which launches a warm browser can serve: the default configuration class.

A pool browser is started before anyone asks for it, so everything fixed at a Chromium's start (its
command line, its policy mounts, its profile) must be what the create would have got cold. What the
driver keeps only in the browser's state and applies after the start (its run's download directory,
its network rules, which the observer arms) is re-pointed at the claim instead.
"""

from __future__ import annotations

from app.core.driver import LaunchSpec
from app.drivers.viewport import DEFAULT_VIEWPORT

# The one class this pool keeps: headless, default viewport, no proxy, extension, locale, user agent,
# saved state or WebRTC switch.
DEFAULT_CLASS = "default"


def class_of(spec: LaunchSpec) -> str | None:
    """The pool class that can serve `spec`, or None: launched cold."""
    if (
        spec.headless
        and spec.window_size is None
        and spec.viewport in (None, DEFAULT_VIEWPORT)
        and spec.locale is None
        and spec.restore_from is None
        and spec.user_agent is None
        and spec.proxy is None
        and not spec.web_rtc_proxy_only
        and not spec.extensions
    ):
        return DEFAULT_CLASS
    return None

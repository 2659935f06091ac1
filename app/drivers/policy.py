"""Chromium's managed policy for every browser this server runs (local driver and runtime image).

Enforced by the browser itself, whoever drives it: no `file:`, no `chrome:` internals or other
non-web schemes, no UDP around the egress proxy (WebRTC), no DNS of its own, no extension that may
set the proxy, and (local driver)
the proxy fixed by policy, which outranks command-line flags and a CDP client's per-context
`proxyServer`. runtime_images/chromium/policies/bctrl.json is `STATIC` as JSON (a test keeps them equal).
"""

from __future__ import annotations

import json
from typing import Any

BLOCKED_SCHEMES = (
    "file",
    "chrome",
    "chrome-untrusted",
    "devtools",
    "chrome-extension",
    "chrome-search",
    "view-source",
    "filesystem",
    "ftp",
    "chrome-native",
    "isolated-app",
)

STATIC: dict[str, Any] = {
    "URLBlocklist": [f"{scheme}://*" for scheme in BLOCKED_SCHEMES] + ["view-source:*"],
    "WebRtcIPHandlingPolicy": "disable_non_proxied_udp",
    "DnsOverHttpsMode": "off",
    "BuiltInDnsClientEnabled": False,
    "AllowFileSelectionDialogs": False,
    "PromptForDownloadLocation": False,
    "BrowserSignin": 0,
    "SyncDisabled": True,
    "MetricsReportingEnabled": False,
    "SafeBrowsingProtectionLevel": 0,
    "PasswordManagerEnabled": False,
    # A submitted sign-in form would send a hash prefix of its credentials to Google's leak check (the
    # PasswordLeakDetection feature switch is not honoured; this policy is).
    "PasswordLeakDetectionEnabled": False,
    # No extension may change the browser's proxy (it would leave around the egress proxy); uploads
    # asking for it are refused too (app/extensions/package.py): this holds for any that slips through.
    "ExtensionSettings": {"*": {"blocked_permissions": ["proxy"]}},
}


def managed_policy(proxy_url: str | None) -> dict[str, Any]:
    policy = dict(STATIC)
    if proxy_url:
        # `<-loopback>`: loopback goes through the proxy too, so the control plane's ports are checked.
        policy["ProxySettings"] = {
            "ProxyMode": "fixed_servers",
            "ProxyServer": proxy_url,
            "ProxyBypassList": "<-loopback>",
        }
    return policy


def static_json() -> str:
    return json.dumps(STATIC, indent=2, sort_keys=True) + "\n"

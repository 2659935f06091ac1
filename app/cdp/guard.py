"""CDP commands a client may not send through the proxy, because they would step around the browser's
isolation: a browser context with its own proxy (around the egress policy), files picked from the
host for an upload, or resources the browser process loads itself from non-web URLs.

The browser's managed policy is the first line (app/drivers/policy.py); this is the second, for what
Chromium offers no policy for. Only frames that mention one of these methods (or use JSON escapes,
which could spell one) are parsed, so ordinary traffic costs a substring search.
"""

from __future__ import annotations

import posixpath

import orjson

TRIGGERS = (b"createBrowserContext", b"setFileInputFiles", b"loadNetworkResource", b"\\u")
PROXY_FIELDS = ("proxyServer", "proxyBypassList")
CONTEXT_ONLY = "Target.createBrowserContext"


def check(payload: bytes, upload_dirs: list[str] | None) -> tuple[dict, str] | None:
    """None when the frame may go to the browser; else (the request, why it is refused).
    `upload_dirs`: where DOM.setFileInputFiles may pick files (None: anywhere, the browser's own host)."""
    if not any(t in payload for t in TRIGGERS):
        return None
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # the browser refuses what it cannot parse either
    if not isinstance(message, dict):
        return None
    method, params = message.get("method"), message.get("params")
    params = params if isinstance(params, dict) else {}
    if method == CONTEXT_ONLY and any(field in params for field in PROXY_FIELDS):
        return message, (
            "Per-context proxies are not allowed: browsers reach the network through the server's "
            "egress proxy (BCTRL_BROWSER_EGRESS)"
        )
    if method == "Network.loadNetworkResource":
        url = str(params.get("url", ""))
        if not url.lower().startswith(("http://", "https://")):
            return message, "Network.loadNetworkResource is allowed for http(s) URLs only"
    if method == "DOM.setFileInputFiles" and upload_dirs is not None:
        for path in params.get("files") or []:
            clean = posixpath.normpath(str(path))
            if not any(clean.startswith(d.rstrip("/") + "/") for d in upload_dirs):
                return message, (
                    "Files for an upload must be in the runtime's file area (stage them with the "
                    "runtime files API) or its downloads"
                )
    return None


def error_reply(message: dict, reason: str) -> bytes:
    reply: dict = {"id": message.get("id"), "error": {"code": -32000, "message": reason}}
    if message.get("sessionId"):
        reply["sessionId"] = message["sessionId"]
    return orjson.dumps(reply)


def upload_dirs(ctx, runtime_id, run_id) -> list[str] | None:
    """The local driver's browser sees the host's paths: only its own areas may feed an upload."""
    if ctx.driver.name != "local":
        return None
    root = ctx.settings.resolved_browser_root
    return [str(root / "files" / str(runtime_id)), str(root / "downloads" / str(run_id)), "/tmp"]

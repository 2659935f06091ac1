"""The activity timeline: a human-readable account of a run, derived from its events.

A navigation is one item whose children are the network requests it caused (until the page's next
navigation); a console error or a page error is one item with its severity; lifecycle, connection,
dialog and download events are one item each. Per-command statistics are left to the events.
"""

from __future__ import annotations

from typing import Any

from app.core import clock
from app.runs.models import RunEvent

SEVERITIES = ("info", "warning", "error")
MAX_CHILDREN = 500

_RUNTIME = {
    "runtime.starting": ("Runtime starting", "info"),
    "runtime.active": ("Browser is running", "info"),
    "runtime.stopped": ("Runtime stopped", "info"),
    "runtime.failed": ("Runtime failed", "error"),
}
_CONNECTION = {
    "connection.created": "CDP connection leased",
    "connection.attached": "Client attached",
    "connection.detached": "Client detached",
    "connection.revoked": "CDP connection revoked",
    "connection.expired": "CDP connection expired",
}


def _item(e: RunEvent, category: str, message: str, severity: str = "info", **extra: Any) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "time": clock.iso(e.time),
        "type": e.type,
        "category": category,
        "message": message,
        "severity": severity,
        "pageId": e.page_id,
        "parentId": None,
        "data": e.data,
        **extra,
    }


def _request_line(e: RunEvent) -> str:
    d = e.data
    if e.type == "network.failed":
        return f"{d.get('method') or ''} {d.get('url')} failed: {d.get('errorText')}".strip()
    return f"{d.get('method') or ''} {d.get('url')} -> {d.get('status')}".strip()


def build(events: list[RunEvent]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    navigation: dict[str | None, dict[str, Any]] = {}
    for e in events:
        t, d = e.type, e.data
        if t in _RUNTIME:
            message, severity = _RUNTIME[t]
            if t == "runtime.failed":
                message = f"Runtime failed: {d.get('message')}"
            items.append(_item(e, "runtime", message, severity))
        elif t in _CONNECTION:
            items.append(_item(e, "runtime", _CONNECTION[t]))
        elif t == "page.created":
            items.append(_item(e, "browser", "Page opened"))
        elif t == "page.closed":
            items.append(_item(e, "browser", "Page closed"))
            navigation.pop(e.page_id, None)
        elif t == "page.navigated":
            if not str(d.get("url", "")).startswith(("http", "file", "data")):
                continue  # about:blank and friends
            item = _item(
                e,
                "browser",
                f"Navigated to {d.get('url')}",
                status="loading",
                children=[],
                requests=0,
                failedRequests=0,
                bytes=0,
                durationSeconds=None,
            )
            items.append(item)
            navigation[e.page_id] = item
        elif t == "page.load":
            item = navigation.get(e.page_id)
            if item is not None and item["status"] == "loading":
                item["status"] = "loaded"
                item["durationSeconds"] = round((e.time - _time(item)).total_seconds(), 3)
        elif t in ("network.response", "network.failed"):
            failed = t == "network.failed" and not d.get("canceled")
            item = navigation.get(e.page_id)
            if item is None:
                if failed:
                    items.append(_item(e, "network", _request_line(e), "warning"))
                continue
            item["requests"] += 1
            item["bytes"] += d.get("encodedBytes") or 0
            if failed:
                item["failedRequests"] += 1
                item["severity"] = "warning"
            if len(item["children"]) < MAX_CHILDREN:
                child = _item(e, "network", _request_line(e), "warning" if failed else "info")
                child["parentId"] = item["id"]
                item["children"].append(child)
        elif t == "console.message":
            level = d.get("level")
            severity = "error" if level in ("error", "assert") else "warning" if level == "warning" else "info"
            items.append(_item(e, "console", str(d.get("text", "")), severity))
        elif t == "page.error":
            items.append(_item(e, "console", f"Uncaught error: {d.get('message')}", "error"))
        elif t == "dialog.opened":
            items.append(_item(e, "browser", f"{d.get('type', 'dialog').capitalize()} dialog: {d.get('message')}"))
        elif t == "download.completed":
            ok = d.get("captured")
            items.append(
                _item(
                    e,
                    "file",
                    f"Downloaded {d.get('name')}" + ("" if ok else " (file not captured)"),
                    "info" if ok else "warning",
                )
            )
        elif t == "artifact.created":
            items.append(_item(e, "file", f"Artifact saved: {d.get('name', d.get('kind', 'file'))}"))
        elif t == "events.dropped":
            items.append(_item(e, "system", f"{d.get('count')} events were dropped ({d.get('reason')})", "warning"))
    return items


def _time(item: dict[str, Any]):
    from datetime import datetime

    return datetime.fromisoformat(item["time"].replace("Z", "+00:00"))


def select_items(items: list[dict[str, Any]], categories: list[str] | None, level: str | None) -> list[dict]:
    minimum = SEVERITIES.index(level) if level else 0
    return [
        i
        for i in items
        if (not categories or i["category"] in categories) and SEVERITIES.index(i["severity"]) >= minimum
    ]

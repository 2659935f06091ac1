"""The run observer: the server's own CDP session to a run's browser, for the whole run.

It is independent of whoever holds the controller lock and changes nothing the controlling client
sees: it creates no targets, never answers dialogs, and only enables domains in its own sessions.
It auto-attaches to every page (and to their iframes and workers) and turns what happens into run
events through the batching writer: pages created and closed, navigations and loads, console
messages and page errors, network requests, responses and failures (no bodies), dialogs, and
downloads, whose files become run artifacts.

Its volume is bounded per run: at most NETWORK_CAP requests (each with its response or failure) and
CONSOLE_CAP console messages and page errors are recorded. The first one past a cap is announced by
an `observer.capped` event (which cap, its size); the rest are only counted, and when the observer
stops, an `observer.dropped` event gives the counts of what was left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

import structlog
from sqlalchemy import select

from app.cdp.client import CdpClient
from app.cdp.traffic import CHILD_TYPES, PAGE_TYPES, URL_LIMIT, TrafficGuard, on_paused
from app.runs.models import RunEvent

log = structlog.get_logger(__name__)

TEXT_LIMIT = 4000
# Per run: requests recorded (a request's response or failure comes with it), console messages and
# page errors recorded; past these only counted.
NETWORK_CAP = 20_000
CONSOLE_CAP = 5_000


def event_url(url: str | None) -> str | None:
    """A URL as events keep it: a data: URL cut short, any other at URL_LIMIT."""
    if url is None:
        return None
    if url.startswith("data:"):
        return url[:100] + ("..." if len(url) > 100 else "")
    return url[:URL_LIMIT]


def _console_text(args: list[dict]) -> str:
    parts = []
    for arg in args:
        if "value" in arg:
            parts.append(str(arg["value"]))
        elif "description" in arg:
            parts.append(arg["description"])
        elif "unserializableValue" in arg:
            parts.append(arg["unserializableValue"])
        else:
            parts.append(arg.get("type", ""))
    return " ".join(parts)[:TEXT_LIMIT]


class RunObserver:
    def __init__(self, ctx, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict[str, Any]) -> None:
        self.ctx = ctx
        self.runtime_id = runtime_id
        self.run_id = run_id
        self.state = state
        self.ws_url = state["wsUrl"]
        # In the browser's view of the filesystem (a container's own, for the docker driver).
        self.downloads_dir = ctx.driver.downloads_dir(run_id)
        self.client: CdpClient | None = None
        self.pages: dict[str, dict[str, Any]] = {}  # targetId -> {url, browserContextId}
        # The main frame's URL per attached session: a load names the document of its own session,
        # whether or not target discovery has reported that page yet.
        self.url_of_session: dict[str, str | None] = {}
        self.page_of_session: dict[str, str] = {}  # sessionId -> top-level page targetId
        # The main frame's document whose navigation was recorded, per session: a tab attached while its
        # first navigation commits is caught up from its frame tree (`_catch_up`), and recorded once.
        self.loader_of_session: dict[str, str] = {}
        # The pages there before the observer was set up (after a takeover, their navigations are recorded
        # already): only the tabs opened later are caught up. None until the setup has listed them.
        self.pages_at_start: set[str] | None = None
        # The one session that observes each page target: a page attached twice (auto-attach racing the
        # attach of the targets found at start) would report every event twice.
        self.session_of_page: dict[str, str] = {}
        self.requests: dict[tuple[str | None, str], dict[str, Any]] = {}
        # Requests ended on our side (their document went away); Chromium may still report them later.
        self.abandoned: set[tuple[str | None, str]] = set()
        self.downloads: dict[str, dict[str, Any]] = {}
        # Recorded and dropped, by cap ("network": requests, "console": messages and page errors).
        self.recorded: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        # networkTraffic rules (app/cdp/traffic.py): new targets then wait until their requests are guarded.
        self.traffic = TrafficGuard.of(self, state)
        self.settled = self.traffic.settled if self.traffic is not None else None

    # --- lifecycle ---

    def start(self) -> None:
        # A fresh context: the observer outlives the request that launched the runtime (and its log ids).
        self._task = asyncio.create_task(self._run(), name=f"observer-{self.run_id}", context=contextvars.Context())

    # A run's end waits for the observer: a download it is capturing must land before the browser goes.
    awaited = True

    @classmethod
    def for_run(cls, ctx, runtime_id: uuid.UUID, run_id: uuid.UUID, state: dict[str, Any]) -> RunObserver | None:
        return cls(ctx, runtime_id, run_id, state) if state.get("wsUrl") else None

    async def stop(self, run_ended: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            await self.client.close()
        if self.dropped:
            self.emit("observer.dropped", "browser", {kind: self.dropped[kind] for kind in ("network", "console")})
            self.dropped.clear()
        # Downloads being captured finish (their file is copied at once once found).
        if self._background:
            await asyncio.wait(list(self._background), timeout=15)

    async def _run(self) -> None:
        try:
            self.client = await CdpClient.open(self.ws_url, self._on_event)
            await self._setup()
            await self.client.closed.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("observer_failed", run_id=str(self.run_id), exc_info=True)

    async def _setup(self) -> None:
        client = self.client
        # Downloads of contexts nobody configured land in the run's own directory.
        with contextlib.suppress(Exception):
            await client.send(
                "Browser.setDownloadBehavior",
                {"behavior": "allowAndName", "downloadPath": self.downloads_dir, "eventsEnabled": True},
            )
        await client.send("Target.setDiscoverTargets", {"discover": True})
        await client.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": self.traffic is not None, "flatten": True},
        )
        targets = await client.send("Target.getTargets")
        self.pages_at_start = {info["targetId"] for info in targets.get("targetInfos", [])}
        for info in targets.get("targetInfos", []):
            if info["type"] in PAGE_TYPES and not info.get("attached"):
                client.send_nowait("Target.attachToTarget", {"targetId": info["targetId"], "flatten": True})
        if self.traffic is not None:
            await self.traffic.settle()

    def emit(self, type: str, category: str, data: dict[str, Any], page_id: str | None = None) -> None:
        if not self.ctx.lease.held():
            return  # another replica may own this run now: it records what the browser does
        # Written only while this process owns the run (checked again when the batch is written).
        self.ctx.events.emit(
            self.run_id, type, category, data, source="browser", page_id=page_id, owner=self.ctx.driver.instance
        )

    def _within(self, kind: str) -> bool:
        """Whether one more of `kind` ("network": a request, "console") may be recorded; counts it either way."""
        cap = NETWORK_CAP if kind == "network" else CONSOLE_CAP
        if self.recorded[kind] < cap:
            self.recorded[kind] += 1
            return True
        if not self.dropped[kind]:
            self.emit("observer.capped", "browser", {"kind": kind, "cap": cap})
        self.dropped[kind] += 1
        return False

    # --- events ---

    async def _on_event(self, method: str, params: dict[str, Any], session_id: str | None) -> None:
        handler = _HANDLERS.get(method)
        if handler is not None:
            try:
                handler(self, params, session_id)
            except Exception:
                log.warning("observer_event_failed", method=method, exc_info=True)

    def _target_created(self, params: dict, _session: str | None) -> None:
        info = params["targetInfo"]
        if info["type"] in PAGE_TYPES and info["targetId"] not in self.pages:
            self.pages[info["targetId"]] = {"url": info.get("url"), "browserContextId": info.get("browserContextId")}
            self.emit(
                "page.created",
                "browser",
                {
                    "targetId": info["targetId"],
                    "url": event_url(info.get("url")),
                    "browserContextId": info.get("browserContextId"),
                    "openerId": info.get("openerId"),
                },
                info["targetId"],
            )

    def _target_destroyed(self, params: dict, _session: str | None) -> None:
        page = self.pages.pop(params["targetId"], None)
        if page is not None:
            self.emit(
                "page.closed",
                "browser",
                {"targetId": params["targetId"], "url": event_url(page.get("url"))},
                params["targetId"],
            )

    def _attached(self, params: dict, parent_session: str | None) -> None:
        info, session = params["targetInfo"], params["sessionId"]
        kind = info["type"]
        if kind in PAGE_TYPES and self.session_of_page.get(info["targetId"], session) != session:
            # Already observed through another session (which also lets it run if it waits): drop this one.
            self.client.send_nowait("Target.detachFromTarget", {"sessionId": session})
            return
        if self.traffic is not None:
            self.traffic.attached(params)
        if kind in PAGE_TYPES:
            self.page_of_session[session] = info["targetId"]
            self.session_of_page[info["targetId"]] = session
            for method in ("Page.enable", "Network.enable", "Runtime.enable"):
                self.client.send_nowait(method, None, session)
            if self.pages_at_start is not None and info["targetId"] not in self.pages_at_start:
                self._in_background(self._catch_up(session))
        elif kind in CHILD_TYPES or kind == "tab":
            parent_page = self.page_of_session.get(parent_session) if parent_session else None
            self.page_of_session[session] = parent_page or info["targetId"]
            if kind != "tab":
                self.client.send_nowait("Network.enable", None, session)
                self.client.send_nowait("Runtime.enable", None, session)
        else:
            return
        self.client.send_nowait(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": self.traffic is not None, "flatten": True},
            session,
        )

    def _detached(self, params: dict, _session: str | None) -> None:
        session = params.get("sessionId", "")
        # Requests of a closed target will never finish: each ends now, with the status if one came.
        for key in [k for k in self.requests if k[0] == session]:
            self._abandon(key, "page closed")
        target = self.page_of_session.pop(session, None)
        self.loader_of_session.pop(session, None)
        if target is not None and self.session_of_page.get(target) == session:
            del self.session_of_page[target]
        self.url_of_session.pop(session, None)

    async def _catch_up(self, session: str) -> None:
        """A tab opened with its URL starts loading before its events are enabled: when its frame tree
        (asked after the enables, so answered after any navigation they report) shows a document whose
        navigation went unseen, that navigation is recorded now."""
        with contextlib.suppress(Exception):  # the tab or the socket closed meanwhile
            tree = await self.client.send("Page.getFrameTree", None, session)
            frame = tree.get("frameTree", {}).get("frame", {})
            url = frame.get("url") or ""
            # Only if no navigation of this tab was seen at all: one seen meanwhile is newer than the tree.
            if (
                url
                and url != "about:blank"
                and frame.get("loaderId")
                and session in self.page_of_session
                and session not in self.loader_of_session
            ):
                self._frame_navigated({"frame": frame}, session)

    def _frame_navigated(self, params: dict, session: str | None) -> None:
        frame = params["frame"]
        if frame.get("parentId"):
            return
        loader = frame.get("loaderId")
        if session is not None and loader:
            if self.loader_of_session.get(session) == loader:
                return  # recorded already (the navigation and the catch-up crossed)
            self.loader_of_session[session] = loader
        page_id = self.page_of_session.get(session)
        if page_id in self.pages:
            self.pages[page_id]["url"] = frame.get("url")
        if session is not None:
            self.url_of_session[session] = frame.get("url")
        # The previous document's requests die with it, and Chromium does not always say so (a fetch
        # whose headers had come but whose body had not): end them, keeping the status seen.
        for key in [k for k, entry in self.requests.items() if k[0] == session and entry.get("loaderId") != loader]:
            self._abandon(key, "page navigated away")
        self.emit(
            "page.navigated",
            "browser",
            {"url": event_url(frame.get("url")), "frameId": frame.get("id"), "loaderId": frame.get("loaderId")},
            page_id,
        )

    def _load(self, params: dict, session: str | None) -> None:
        page_id = self.page_of_session.get(session)
        url = self.url_of_session.get(session)
        if url is None:
            url = self.pages.get(page_id, {}).get("url")
        self.emit("page.load", "browser", {"url": event_url(url)}, page_id)

    def _console(self, params: dict, session: str | None) -> None:
        if not self._within("console"):
            return
        frame = (params.get("stackTrace") or {}).get("callFrames") or [{}]
        self.emit(
            "console.message",
            "console",
            {
                "level": params.get("type"),
                "text": _console_text(params.get("args", [])),
                "url": event_url(frame[0].get("url")),
                "line": frame[0].get("lineNumber"),
            },
            self.page_of_session.get(session),
        )

    def _exception(self, params: dict, session: str | None) -> None:
        if not self._within("console"):
            return
        details = params.get("exceptionDetails", {})
        exception = details.get("exception") or {}
        message = exception.get("description") or details.get("text") or "Uncaught exception"
        self.emit(
            "page.error",
            "console",
            {
                "message": message[:TEXT_LIMIT],
                "url": event_url(details.get("url")),
                "line": details.get("lineNumber"),
                "column": details.get("columnNumber"),
            },
            self.page_of_session.get(session),
        )

    def _request(self, params: dict, session: str | None) -> None:
        key = (session, params["requestId"])
        redirect = params.get("redirectResponse")
        if redirect is not None and key in self.requests:
            self._response_done(
                key,
                status=redirect.get("status"),
                mime=redirect.get("mimeType"),
                size=redirect.get("encodedDataLength"),
                redirected=True,
            )
        if key not in self.requests and not self._within("network"):
            return  # past the cap: neither the request nor its response or failure is recorded
        request = params["request"]
        self.requests[key] = {
            "url": request.get("url"),
            "method": request.get("method"),
            "type": params.get("type"),
            "started": time.monotonic(),
            "status": None,
            "mime": None,
            "loaderId": params.get("loaderId"),
        }
        self.emit(
            "network.request",
            "network",
            {
                "requestId": params["requestId"],
                "url": event_url(request.get("url")),
                "method": request.get("method"),
                "resourceType": params.get("type"),
                "loaderId": params.get("loaderId"),
            },
            self.page_of_session.get(session),
        )

    def _response(self, params: dict, session: str | None) -> None:
        entry = self.requests.get((session, params["requestId"]))
        if entry is not None:
            response = params.get("response", {})
            entry["status"], entry["mime"] = response.get("status"), response.get("mimeType")
            entry["fromCache"] = response.get("fromDiskCache") or response.get("fromServiceWorker") or False

    def _finished(self, params: dict, session: str | None) -> None:
        self._response_done((session, params["requestId"]), size=params.get("encodedDataLength"))

    def _response_done(self, key, *, status=None, mime=None, size=None, redirected=False) -> None:
        if key in self.abandoned:
            self.abandoned.discard(key)
            return
        entry = self.requests.pop(key, None)
        if entry is None:
            return
        self.emit(
            "network.response",
            "network",
            {
                "requestId": key[1],
                "url": event_url(entry["url"]),
                "method": entry["method"],
                "status": status if status is not None else entry["status"],
                "mimeType": mime or entry["mime"],
                "resourceType": entry["type"],
                "encodedBytes": size,
                "redirected": redirected,
                "fromCache": entry.get("fromCache", False),
                "durationMs": round((time.monotonic() - entry["started"]) * 1000, 1),
            },
            self.page_of_session.get(key[0]),
        )

    def _abandon(self, key: tuple[str | None, str], why: str) -> None:
        entry = self.requests.pop(key)
        if len(self.abandoned) > 10_000:  # bounded: a late report of a very old request is dropped
            self.abandoned.clear()
        self.abandoned.add(key)
        self._emit_failed(key, entry, {"errorText": f"net::ERR_ABORTED ({why})", "canceled": True})

    def _failed(self, params: dict, session: str | None) -> None:
        key = (session, params["requestId"])
        if key in self.abandoned:
            self.abandoned.discard(key)
            return
        entry = self.requests.pop(key, None)
        if entry is None and self.dropped["network"]:
            return  # a request left out past the cap (or one never seen): its failure is left out too
        entry = entry or {
            "url": None,
            "method": None,
            "type": params.get("type"),
            "started": time.monotonic(),
            "status": None,
        }
        self._emit_failed(key, entry, params)

    def _emit_failed(self, key: tuple[str | None, str], entry: dict, failure: dict) -> None:
        """`failure`: Network.loadingFailed's params, or what we say for a request we ended ourselves."""
        self.emit(
            "network.failed",
            "network",
            {
                "requestId": key[1],
                "url": event_url(entry["url"]),
                "method": entry["method"],
                "resourceType": failure.get("type") or entry["type"],
                "errorText": failure.get("errorText"),
                "canceled": failure.get("canceled", False),
                "blockedReason": failure.get("blockedReason"),
                "status": entry["status"],
                "durationMs": round((time.monotonic() - entry["started"]) * 1000, 1),
            },
            self.page_of_session.get(key[0]),
        )

    def _dialog_opened(self, params: dict, session: str | None) -> None:
        self.emit(
            "dialog.opened",
            "browser",
            {
                "type": params.get("type"),
                "message": params.get("message", "")[:TEXT_LIMIT],
                "url": event_url(params.get("url")),
            },
            self.page_of_session.get(session),
        )

    def _dialog_closed(self, params: dict, session: str | None) -> None:
        self.emit("dialog.closed", "browser", {"accepted": params.get("result")}, self.page_of_session.get(session))

    # --- downloads ---

    def _download_begin(self, params: dict, session: str | None) -> None:
        guid = params["guid"]
        if guid in self.downloads:
            return
        page_id = self.page_of_session.get(session) or self._page_of_frame(params.get("frameId"))
        self.downloads[guid] = {
            "name": params.get("suggestedFilename") or "download",
            "url": params.get("url"),
            "pageId": page_id,
            "started": time.monotonic(),
            "contextId": self.pages.get(page_id or "", {}).get("browserContextId"),
        }
        self.emit(
            "download.started",
            "browser",
            {"guid": guid, "url": event_url(params.get("url")), "suggestedFilename": params.get("suggestedFilename")},
            page_id,
        )

    def _download_progress(self, params: dict, session: str | None) -> None:
        state = params.get("state")
        download = self.downloads.get(params["guid"])
        if download is None or state not in ("completed", "canceled") or download.get("done"):
            return
        download["done"] = True
        if state == "canceled":
            self.emit(
                "download.canceled",
                "browser",
                {"guid": params["guid"], "url": event_url(download["url"])},
                download["pageId"],
            )
            return
        self._in_background(self._capture(params["guid"], download, params.get("filePath")))

    def _in_background(self, work) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _page_of_frame(self, frame_id: str | None) -> str | None:
        # A page's main frame id is its target id.
        return frame_id if frame_id in self.pages else None

    async def _download_dirs(self, context_id: str | None) -> list[str]:
        """Where the browser may have put the file: the directories clients chose for this context (the
        proxy records each Browser.setDownloadBehavior as a `download.behavior` event), newest first, then ours."""
        async with self.ctx.db.transaction() as s:
            rows = (
                (
                    await s.execute(
                        select(RunEvent.data)
                        .where(RunEvent.run_id == self.run_id, RunEvent.type == "download.behavior")
                        .order_by(RunEvent.seq.desc())
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
        dirs = [
            d["downloadPath"] for d in rows if d.get("downloadPath") and d.get("browserContextId") in (context_id, None)
        ]
        return [*dirs, self.downloads_dir]

    async def _capture(self, guid: str, download: dict, file_path: str | None) -> None:
        try:
            await self._capture_file(guid, download, file_path)
        except Exception as exc:
            log.warning("download_capture_failed", run_id=str(self.run_id), guid=guid, exc_info=True)
            self.emit(
                "download.completed",
                "browser",
                {
                    "guid": guid,
                    "url": event_url(download["url"]),
                    "name": download["name"],
                    "captured": False,
                    "reason": f"capture failed: {type(exc).__name__}",
                },
                download["pageId"],
            )

    async def _capture_file(self, guid: str, download: dict, file_path: str | None) -> None:
        """Keep a copy of the downloaded file as a run artifact, wherever the client told it to go."""
        from app.artifacts import service as artifacts

        data = {"guid": guid, "url": event_url(download["url"]), "name": download["name"]}
        candidates = (
            [file_path]
            if file_path
            else [str(PurePosixPath(d) / guid) for d in await self._download_dirs(download.get("contextId"))]
        )
        # Only files in the run's own download area become artifacts (the driver reads nothing else).
        areas = self.ctx.driver.download_areas(self.state)
        candidates = [c for c in candidates if _inside_any(c, areas)]
        if not candidates:
            self.emit(
                "download.completed",
                "browser",
                {**data, "captured": False, "reason": "the file is outside the run's download area"},
                download["pageId"],
            )
            return
        fetched = None
        for _ in range(50):  # the file is renamed into place just after the event
            for candidate in candidates:
                if fetched := await self.ctx.driver.fetch_file(self.state, candidate):
                    break
            if fetched:
                break
            await asyncio.sleep(0.1)
        if fetched is None:
            self.emit(
                "download.completed",
                "browser",
                {**data, "captured": False, "reason": "the file was not found on the browser host"},
                download["pageId"],
            )
            return
        source, temporary = fetched
        try:
            # record() copies the file at once: the client may delete its own copy when its context closes.
            artifact = await artifacts.record(
                self.ctx,
                run_id=self.run_id,
                kind="download",
                name=download["name"],
                content_type=_guess_type(download["name"]),
                source=source,
                metadata={"url": event_url(download["url"]), "guid": guid},
            )
        finally:
            if temporary:
                source.unlink(missing_ok=True)
        self.emit(
            "download.completed",
            "browser",
            {**data, "captured": True, "artifactId": str(artifact.id), "sizeBytes": artifact.size_bytes},
            download["pageId"],
        )


def _inside_any(path: str, areas: list[str]) -> bool:
    clean = PurePosixPath(path)
    return ".." not in clean.parts and any(
        clean.is_relative_to(PurePosixPath(a)) and clean != PurePosixPath(a) for a in areas
    )


def _guess_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


_HANDLERS = {
    "Target.targetCreated": RunObserver._target_created,
    "Target.targetDestroyed": RunObserver._target_destroyed,
    "Target.attachedToTarget": RunObserver._attached,
    "Target.detachedFromTarget": RunObserver._detached,
    "Page.frameNavigated": RunObserver._frame_navigated,
    "Page.loadEventFired": RunObserver._load,
    "Page.javascriptDialogOpening": RunObserver._dialog_opened,
    "Page.javascriptDialogClosed": RunObserver._dialog_closed,
    "Runtime.consoleAPICalled": RunObserver._console,
    "Runtime.exceptionThrown": RunObserver._exception,
    "Network.requestWillBeSent": RunObserver._request,
    "Network.responseReceived": RunObserver._response,
    "Network.loadingFinished": RunObserver._finished,
    "Network.loadingFailed": RunObserver._failed,
    "Fetch.requestPaused": on_paused,
    "Browser.downloadWillBegin": RunObserver._download_begin,
    "Browser.downloadProgress": RunObserver._download_progress,
    "Page.downloadWillBegin": RunObserver._download_begin,
    "Page.downloadProgress": RunObserver._download_progress,
}

"""Views: scoped, expiring, revocable links to one page that shows what the view's components allow.

A view names a scope (a space and optionally some of its browsers, a browser, or a run). Its page
shows the live browser through the live viewer (app/live), the recording through the replay page,
and the run's events, each only when the view allows it. The viewer links the page uses are minted
under the view (and recorded against it), never longer-lived than it, and revoked with it.

Nothing here knows an API generation: the routes translate their bodies into a `ViewSpec`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from app.accounts.service import Principal
from app.artifacts import service as artifacts
from app.artifacts.models import Artifact, ArtifactKind
from app.core import clock, ids
from app.core.context import AppContext
from app.core.db import get_owned
from app.core.errors import DomainError, InvalidRequest, NotFound, Unauthorized
from app.core.paging import PageParams, fetch_by_id
from app.live import service as live
from app.runs import events as run_events
from app.runs import service as runs
from app.runs import trace as traces
from app.runs.models import Run, RunStatus
from app.runtimes.models import Runtime, RuntimeStatus
from app.spaces.models import Space
from app.storage.http import Download
from app.views import tokens
from app.views.models import View, ViewScopeKind, ViewViewer

DEFAULT_EXPIRY_SECONDS = 8 * 3600
MAX_EXPIRY_SECONDS = 30 * 86_400
# Components a view may carry (each a boolean), and which of them this server can show.
COMPONENTS = ("bell", "events", "recordings", "trace")
# What a view may allow on files (`components.files`), and which of them this server honours: `read`
# lists the shown run's files (its artifacts) and downloads them through the view's token.
FILE_CAPABILITIES = ("library", "manage", "read", "upload", "use")
FILE_CAPABILITIES_HONOURED = ("read",)
# How many spans the page's timeline shows at most (the earliest, parents first).
SPANS_SHOWN = 500
# How many of a run's files the page lists at most (the newest).
FILES_SHOWN = 200
# How many events the page's events panel shows at most (the newest).
EVENTS_SHOWN = 200
# How many of a space's browsers the page lists at most (the oldest first).
MAX_BROWSERS_SHOWN = 100


class Forbidden(DomainError):
    status = 403
    code = "auth.forbidden"


@dataclass(frozen=True, slots=True)
class ViewScope:
    kind: str  # ViewScopeKind
    space: Space
    runtime: Runtime | None = None
    run: Run | None = None
    runtime_ids: list[uuid.UUID] | None = None


@dataclass(frozen=True, slots=True)
class ViewSpec:
    scope: ViewScope
    components: dict[str, bool]
    control: bool
    expires_in_seconds: int
    # {"mode": "hosted"} or {"mode": "embedded", "allowedOrigins": [...]}
    presentation: dict[str, Any] = field(default_factory=lambda: {"mode": "hosted"})
    # {capability: bool} of FILE_CAPABILITIES_HONOURED
    files: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Minted:
    view: View
    token: str


def view_not_found(view_id: object) -> NotFound:
    return NotFound("View not found", code="view.not_found", details={"viewId": str(view_id)})


def token_invalid() -> Unauthorized:
    return Unauthorized(
        "This view link is invalid, has expired or was revoked; ask for a new one", code="auth.view_invalid"
    )


def page_url(ctx: AppContext, token: str) -> str:
    return f"{ctx.settings.resolved_public_url}/view?token={token}"


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of a URL (an Origin or a Referer), lower-case, or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


# --- the resource ---


async def create(ctx: AppContext, p: Principal, spec: ViewSpec) -> Minted:
    scope = spec.scope
    if spec.control and scope.kind == ViewScopeKind.RUN and scope.run.status != RunStatus.ACTIVE:
        # A run that has ended has no browser left to control; a browser's or a space's view controls
        # whatever run is current.
        raise InvalidRequest(
            "control cannot be granted in a view of a run that has ended",
            code="view.component_denied",
            details={"component": "control", "runId": str(scope.run.id), "status": scope.run.status},
        )
    now = clock.now()
    view_id = ids.new_id()
    token = tokens.mint(view_id)
    view = View(
        id=view_id,
        account_id=p.account_id,
        space_id=scope.space.id,
        scope=scope.kind,
        runtime_id=scope.runtime.id if scope.runtime else (scope.run.runtime_id if scope.run else None),
        run_id=scope.run.id if scope.run else None,
        runtime_ids=[str(r) for r in scope.runtime_ids] if scope.runtime_ids is not None else None,
        components={
            **{name: bool(spec.components.get(name)) for name in COMPONENTS},
            "files": {name: bool(spec.files.get(name)) for name in FILE_CAPABILITIES_HONOURED},
        },
        control=spec.control,
        presentation=spec.presentation,
        token_hash=tokens.digest(ctx.signing_key, token),
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=spec.expires_in_seconds),
        revoked_at=None,
    )
    async with ctx.db.transaction() as s:
        s.add(view)
        await _announce(s, view, "view.created")
    return Minted(view, token)


async def _announce(s, view: View, type: str) -> None:
    """A view of a run, or of a browser with a run now, is an event of that run (so webhooks and drains
    see it); a view of a space names no run and is announced nowhere."""
    run_id = view.run_id
    if run_id is None and view.runtime_id is not None:
        runtime = await s.get(Runtime, view.runtime_id)
        run_id = runtime.active_run_id if runtime is not None else None
    if run_id is not None and await s.get(Run, run_id) is not None:
        await run_events.append(
            s,
            run_id,
            type,
            "live",
            {"viewId": str(view.id), "scope": view.scope, "control": view.control},
            source="api",
        )


async def get(ctx: AppContext, p: Principal, view_id: str, *, revoked: bool = False) -> View:
    """A view of the account that was not revoked (unless `revoked`); an expired one is still readable."""
    view = await get_owned(ctx.db, View, view_id, p.account_id)
    if view is None or (view.revoked_at is not None and not revoked):
        raise view_not_found(view_id)
    return view


async def list_views(
    ctx: AppContext, p: Principal, page: PageParams, *, newest_first: bool = True
) -> tuple[list[View], str | None]:
    """The account's active views: neither revoked nor expired."""
    stmt = select(View).where(View.account_id == p.account_id, View.revoked_at.is_(None), View.expires_at > clock.now())
    return await fetch_by_id(ctx.db, stmt, View.id, page, newest_first=newest_first)


async def space_name(ctx: AppContext, view: View) -> str:
    async with ctx.db.read() as s:
        space = await s.get(Space, view.space_id)
    return space.name if space is not None else ""


async def reissue(ctx: AppContext, view: View) -> Minted:
    """A new token for the view (the old one stops working): what a replayed create hands out, since
    the first answer's token was never stored."""
    token = tokens.mint(view.id)
    async with ctx.db.transaction() as s:
        row = await s.get(View, view.id, with_for_update=True)
        if row is None or row.revoked_at is not None:
            raise view_not_found(view.id)
        row.token_hash = tokens.digest(ctx.signing_key, token)
        row.updated_at = clock.now()
    return Minted(row, token)


async def revoke(ctx: AppContext, view: View) -> View:
    """Revoke at once: the token stops working, and every viewer link its page minted is revoked, so
    open live pages close (at once in this process, within seconds in others)."""
    now = clock.now()
    async with ctx.db.transaction() as s:
        row = await s.get(View, view.id, with_for_update=True)
        if row is None or row.revoked_at is not None:
            raise view_not_found(view.id)
        row.revoked_at = now
        row.updated_at = now
        await _announce(s, row, "view.revoked")
    await _revoke_viewers(ctx, view.id)
    return row


async def _revoke_viewers(ctx: AppContext, view_id: uuid.UUID) -> None:
    async with ctx.db.read() as s:
        links = list((await s.execute(select(ViewViewer).where(ViewViewer.view_id == view_id))).scalars())
        found = {link.run_id: await s.get(Run, link.run_id) for link in links}
    for link in links:
        run = found.get(link.run_id)
        if run is not None:
            try:
                await live.revoke_viewers(ctx, run, str(link.viewer_id))
            except NotFound:
                pass  # the run (and its links) went away meanwhile


# --- the bearer token and where it is used from ---


async def authenticate(ctx: AppContext, raw: str | None) -> View:
    """The live view a bearer token opens: forged, expired and revoked tokens are all 401 alike."""
    view_id = tokens.view_id_of(raw)
    if view_id is None:
        raise token_invalid()
    async with ctx.db.read() as s:
        view = await s.get(View, view_id)
    if view is None or not tokens.matches(ctx.signing_key, raw, view.token_hash):
        raise token_invalid()
    if view.revoked_at is not None or view.expires_at <= clock.now():
        raise token_invalid()
    return view


def allowed_origins(ctx: AppContext, view: View) -> list[str]:
    """Origins the view may be used from: this server's own, and an embedded view's allowed origins."""
    own = origin_of(ctx.settings.resolved_public_url)
    extra = view.presentation.get("allowedOrigins") or [] if view.presentation.get("mode") == "embedded" else []
    return [o for o in [own, *extra] if o]


def check_origin(ctx: AppContext, view: View, origin: str | None, referer: str | None) -> None:
    """Refuse a request a browser says comes from a page the presentation does not allow. A request that
    names neither (a script, a page with `no-referrer`) is left to the frame-ancestors policy."""
    allowed = allowed_origins(ctx, view)
    for claimed in (origin, referer):
        if claimed and claimed != "null":
            seen = origin_of(claimed)
            if seen is None or seen not in allowed:
                raise Forbidden(
                    "This view may not be used from this origin",
                    code="view.origin_denied",
                    details={"origin": seen or claimed[:200]},
                )
            return


def components_of(view: View) -> dict[str, bool]:
    """The view's boolean components (a view made before a component existed does not include it)."""
    return {name: bool(view.components.get(name)) for name in COMPONENTS}


def file_capabilities_of(view: View) -> dict[str, bool]:
    """Every file capability, true only for the honoured ones the view was made with."""
    given = view.components.get("files")
    given = given if isinstance(given, dict) else {}
    return {name: name in FILE_CAPABILITIES_HONOURED and bool(given.get(name)) for name in FILE_CAPABILITIES}


def frame_ancestors(view: View) -> str:
    """The page's framing policy: a hosted view is never framed, an embedded one only by its origins."""
    if view.presentation.get("mode") != "embedded":
        return "'none'"
    return " ".join(view.presentation.get("allowedOrigins") or []) or "'none'"


# --- what the page shows ---


async def _targets(ctx: AppContext, view: View) -> list[Runtime]:
    async with ctx.db.read() as s:
        if view.scope == ViewScopeKind.SPACE:
            stmt = select(Runtime).where(
                Runtime.space_id == view.space_id, Runtime.account_id == view.account_id, Runtime.deleted_at.is_(None)
            )
            if view.runtime_ids is not None:
                stmt = stmt.where(Runtime.id.in_([uuid.UUID(r) for r in view.runtime_ids]))
            return list((await s.execute(stmt.order_by(Runtime.id).limit(MAX_BROWSERS_SHOWN))).scalars())
        runtime = await s.get(Runtime, view.runtime_id) if view.runtime_id else None
    return [runtime] if runtime is not None else []


async def _latest_run(ctx: AppContext, runtime_id: uuid.UUID) -> Run | None:
    async with ctx.db.read() as s:
        return (
            await s.execute(select(Run).where(Run.runtime_id == runtime_id).order_by(Run.id.desc()).limit(1))
        ).scalar_one_or_none()


def _live(run: Run, runtime: Runtime | None) -> bool:
    return (
        run.status == RunStatus.ACTIVE
        and runtime is not None
        and runtime.active_run_id == run.id
        and runtime.status == RuntimeStatus.ACTIVE
        and bool((runtime.driver_state or {}).get("wsUrl"))
    )


async def _run_state(ctx: AppContext, run: Run | None, runtime: Runtime | None) -> dict[str, Any] | None:
    if run is None:
        return None
    recording, duration_ms, _ = await live.recording_of(ctx, run)
    return {
        "id": str(run.id),
        "status": run.status,
        "live": _live(run, runtime),
        # An agent (an invocation or a task) holds the browser: the page offers no take-over it would refuse.
        "agentControls": bool(
            _live(run, runtime)
            and runtime.controller_kind == "invocation"
            and runtime.controller_expires_at is not None
            and runtime.controller_expires_at > clock.now()
        ),
        "recording": recording,
        "durationMs": duration_ms,
        "startedAt": clock.iso(run.started_at) if run.started_at else None,
        "endedAt": clock.iso(run.finished_at) if run.finished_at else None,
    }


async def page_state(ctx: AppContext, view: View) -> dict[str, Any]:
    """What the page shows now: the view's grants and each browser in scope with the run to show (its
    current run, else its latest; a run scope always shows its run)."""
    browsers = []
    for runtime in await _targets(ctx, view):
        if view.scope == ViewScopeKind.RUN:
            async with ctx.db.read() as s:
                run = await s.get(Run, view.run_id)
        elif runtime.active_run_id is not None:
            async with ctx.db.read() as s:
                run = await s.get(Run, runtime.active_run_id)
        else:
            run = await _latest_run(ctx, runtime.id)
        browsers.append({"id": str(runtime.id), "name": runtime.name, "run": await _run_state(ctx, run, runtime)})
    return {
        "id": str(view.id),
        "scope": view.scope,
        "spaceName": await space_name(ctx, view),
        "components": {**components_of(view), "files": file_capabilities_of(view)},
        "control": view.control,
        "expiresAt": clock.iso(view.expires_at),
        "browsers": browsers,
    }


async def visible_run(ctx: AppContext, view: View, run_id: str | None) -> Run:
    """A run the view may show: its run, a run of its browser, or of a browser in its space (scope)."""
    wanted = ids.parse_uuid(run_id or "")
    run = None
    if wanted is not None:
        async with ctx.db.read() as s:
            run = await s.get(Run, wanted)
    if run is None or run.account_id != view.account_id:
        raise runs.run_not_found(run_id)
    if view.scope == ViewScopeKind.RUN:
        ok = run.id == view.run_id
    elif view.scope == ViewScopeKind.BROWSER:
        ok = run.runtime_id == view.runtime_id
    else:
        ok = run.space_id == view.space_id and (view.runtime_ids is None or str(run.runtime_id) in view.runtime_ids)
    if not ok:
        raise runs.run_not_found(run_id)
    return run


def _denied(component: str) -> Forbidden:
    return Forbidden(
        f"This view does not include {component}", code="view.component_denied", details={"component": component}
    )


def _seconds_left(view: View) -> int:
    left = int((view.expires_at - clock.now()).total_seconds())
    if left < 1:
        raise token_invalid()
    return left


async def _link(ctx: AppContext, view: View, run: Run, viewer_id: uuid.UUID) -> None:
    """Record a viewer link against the view; if the view was revoked meanwhile, revoke the link too."""
    async with ctx.db.transaction() as s:
        s.add(ViewViewer(viewer_id=viewer_id, view_id=view.id, run_id=run.id))
    async with ctx.db.read() as s:
        row = await s.get(View, view.id)
    if row is None or row.revoked_at is not None:
        await live.revoke_viewers(ctx, run, str(viewer_id))
        raise token_invalid()


async def live_link(ctx: AppContext, view: View, run: Run, control: bool) -> dict[str, Any]:
    """A live viewer URL for the page, watch-only or (when the view grants control) taking control under
    the controller lock: 409 while a CDP lease or an invocation controls the browser."""
    if control and not view.control:
        raise Forbidden("This view does not allow control of the browser", code="viewer.control_forbidden")
    minted = await live.mint_live(ctx, run, "input" if control else "none", _seconds_left(view))
    await _link(ctx, view, run, minted.token.viewer_id)
    return {"url": minted.url, "control": control, "expiresAt": live.iso_epoch(minted.expires_at)}


async def replay_link(ctx: AppContext, view: View, run: Run) -> dict[str, Any]:
    if not view.components.get("recordings"):
        raise _denied("recordings")
    minted, info = await live.mint_recording(ctx, run, _seconds_left(view))
    await _link(ctx, view, run, minted.token.viewer_id)
    url = minted.url if view.components.get("events") else f"{minted.url}&activity=0"
    return {"url": url, "status": info["status"], "expiresAt": live.iso_epoch(minted.expires_at)}


async def link_shows_events(ctx: AppContext, viewer_id: uuid.UUID) -> bool:
    """Whether a viewer link may carry the run's activity: yes, unless a view without events minted it."""
    async with ctx.db.read() as s:
        link = await s.get(ViewViewer, viewer_id)
        view = await s.get(View, link.view_id) if link is not None else None
    return view is None or bool(view.components.get("events"))


async def events(ctx: AppContext, view: View, run: Run) -> dict[str, Any]:
    """The run's activity (navigations, requests, console, ...), newest last, for the events panel."""
    if not view.components.get("events"):
        raise _denied("events")
    items, _, truncated = await runs.activity(ctx, run, PageParams(limit=10_000, after=None), None, None)
    return {"runId": str(run.id), "items": items[-EVENTS_SHOWN:], "truncated": truncated or len(items) > EVENTS_SHOWN}


def span_tree(spans: list[traces.Span]) -> list[tuple[traces.Span, int]]:
    """The spans depth first, each parent followed by its children in start order, with their depth (a span
    whose parent is not in the list is a root)."""
    known = {span.id for span in spans}
    children: dict[str | None, list[traces.Span]] = {}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in known else None, []).append(span)
    ordered: list[tuple[traces.Span, int]] = []
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        ordered.append((span, depth))
        stack += [(child, depth + 1) for child in reversed(children.get(span.id, []))]
    return ordered


def _span_out(span: traces.Span, depth: int) -> dict[str, Any]:
    error = span.attributes.get("error.type")
    return {
        "id": span.id,
        "parentId": span.parent_id,
        "depth": depth,
        "kind": span.kind,
        "name": span.name,
        "status": span.status,
        "startedAt": clock.iso(span.started_at),
        "finishedAt": clock.iso(span.finished_at) if span.finished_at else None,
        "durationMs": span.duration_ms,
        "error": str(error) if error is not None else None,
    }


async def trace(ctx: AppContext, view: View, run: Run) -> dict[str, Any]:
    """The run's spans for the page's timeline (403 unless the view includes the trace): each span's kind,
    name, status, times and depth under the run, never its attributes (the URLs, reasoning and user
    agents they carry are the run's activity, which the events component gates)."""
    if not view.components.get("trace"):
        raise _denied("trace")
    built = await traces.spans_of(ctx, run)
    kept = built.spans[:SPANS_SHOWN]
    shown = [_span_out(span, depth) for span, depth in span_tree(kept)]
    root = kept[0] if kept else None
    return {
        "runId": str(run.id),
        "status": run.status,
        "startedAt": clock.iso(root.started_at) if root else None,
        "finishedAt": clock.iso(root.finished_at) if root and root.finished_at else None,
        "now": clock.iso(clock.now()),
        "spans": shown,
        "truncated": built.truncated or len(built.spans) > SPANS_SHOWN,
    }


def _file_shown(view: View, artifact: Artifact) -> bool:
    # The recording is the recordings component's: a view without it lists no recording.
    return artifact.kind != ArtifactKind.RECORDING or bool(view.components.get("recordings"))


def _file_out(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": str(artifact.id),
        "name": artifact.name,
        "kind": artifact.kind,
        "contentType": artifact.content_type,
        "sizeBytes": artifact.size_bytes,
        "createdAt": clock.iso(artifact.created_at),
    }


def _files_denied() -> Forbidden:
    return Forbidden(
        "This view does not include the run's files",
        code="view.component_denied",
        details={"component": "files", "capability": "read"},
    )


async def files(ctx: AppContext, view: View, run: Run) -> dict[str, Any]:
    """The run's files (what it produced: downloads, collected files, exports, screenshots, and its
    recording when the view includes recordings), newest first (403 unless the view may read files)."""
    if not file_capabilities_of(view)["read"]:
        raise _files_denied()
    found = [a for a in await artifacts.of_run(ctx, run) if _file_shown(view, a)]
    found.reverse()
    return {
        "runId": str(run.id),
        "items": [_file_out(a) for a in found[:FILES_SHOWN]],
        "truncated": len(found) > FILES_SHOWN,
    }


async def file_download(ctx: AppContext, view: View, run: Run, file_id: str) -> Download:
    """One of the run's files to download (403 unless the view may read files; 404 for a file of
    another run, or the recording of a view without recordings)."""
    if not file_capabilities_of(view)["read"]:
        raise _files_denied()
    artifact = await artifacts.get(ctx, run, file_id)
    if not _file_shown(view, artifact):
        raise artifacts.artifact_not_found(file_id)
    return await artifacts.content(ctx, run, file_id)

"""Computer use in a running browser: pointer, keyboard, screenshots, batches and the clipboard.

Each route holds the browser for its call (app/browsing/access.py: refused with 409
`browser.control_held` naming the holder while a CDP client, a person or a task controls it) and hands
one action, or a batch, to app/browsing/computer.py. Idempotency-Key replays the stored result of a
POST or PUT without repeating it.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.accounts.service import Principal
from app.browsing import access, computer
from app.core.context import AppContext
from app.core.idempotency import Idempotency
from app.core.schemas import RequestModel, errors
from app.current.computer_schemas import (
    BatchBody,
    ClickBody,
    ClipboardReadDataOut,
    ClipboardReadOut,
    ClipboardWrite,
    ClipboardWriteDataOut,
    ClipboardWriteOut,
    ComputerBatchResultOut,
    ComputerResultOut,
    DoubleClickBody,
    DragBody,
    KeyBody,
    MoveBody,
    ScrollBody,
    TypeBody,
    WaitBody,
    action_of,
)
from app.current.paths import PathBrowser
from app.runtimes.models import Runtime

router = APIRouter(prefix="/v1/browsers/{browser_id}/computer", tags=["browser computer"])
routers = (router,)

_ERRORS = errors(400, 404, 409, 429, 502)


async def _act(ctx: AppContext, p: Principal, browser: Runtime, action: computer.Action) -> ComputerResultOut:
    async with access.hold(ctx, browser, actor=str(p.key_id)) as held:
        return ComputerResultOut.of(await computer.act(held, action))


async def _action(
    ctx: AppContext, p: Principal, browser: Runtime, idem: Idempotency, body: RequestModel | None, kind: str
) -> ComputerResultOut:
    """One action: its words checked (before the idempotency record and the hold), then done in a hold."""
    action = action_of(body, kind) if body is not None else computer.Action(kind=kind)
    computer.validate(action)
    return await idem.once(lambda: _act(ctx, p, browser, action), body.model_dump(mode="json") if body else {})


@router.post("/click", response_model=ComputerResultOut, responses=_ERRORS)
async def click(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: ClickBody, idem: IdempotencyDep):
    """Click at `coordinate` (CSS pixels of the active page's viewport), or at the cursor when omitted."""
    return await _action(ctx, p, browser, idem, body, "click")


@router.post("/double-click", response_model=ComputerResultOut, responses=_ERRORS)
async def double_click(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: DoubleClickBody, idem: IdempotencyDep):
    """Double-click the left button at `coordinate`, or at the cursor when omitted."""
    return await _action(ctx, p, browser, idem, body, "doubleClick")


@router.post("/move", response_model=ComputerResultOut, responses=_ERRORS)
async def move(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: MoveBody, idem: IdempotencyDep):
    """Move the pointer to `coordinate`."""
    return await _action(ctx, p, browser, idem, body, "move")


@router.post("/drag", response_model=ComputerResultOut, responses=_ERRORS)
async def drag(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: DragBody, idem: IdempotencyDep):
    """Press the left button at `startCoordinate` (or the cursor), move along `path`, release at `coordinate`."""
    return await _action(ctx, p, browser, idem, body, "drag")


@router.post("/scroll", response_model=ComputerResultOut, responses=_ERRORS)
async def scroll(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: ScrollBody, idem: IdempotencyDep):
    """Turn the wheel `amount` notches (100 CSS pixels each) at `coordinate`, the cursor, or the middle."""
    return await _action(ctx, p, browser, idem, body, "scroll")


@router.post("/key", response_model=ComputerResultOut, responses=_ERRORS)
async def key(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: KeyBody, idem: IdempotencyDep):
    """Press one chord (`Enter`, `ctrl+a`, `shift+Tab`), `repeat` times; ctrl+v pastes the run's clipboard."""
    return await _action(ctx, p, browser, idem, body, "key")


@router.post("/type", response_model=ComputerResultOut, responses=_ERRORS)
async def type_text(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: TypeBody, idem: IdempotencyDep):
    """Type text into the focused control, key by key (the text is not recorded)."""
    return await _action(ctx, p, browser, idem, body, "type")


@router.post("/wait", response_model=ComputerResultOut, responses=_ERRORS)
async def wait(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: WaitBody, idem: IdempotencyDep):
    """Wait `duration` seconds (at most 10, default 1) holding the browser."""
    return await _action(ctx, p, browser, idem, body, "wait")


@router.post("/screenshot", response_model=ComputerResultOut, responses=_ERRORS)
async def screenshot(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, idem: IdempotencyDep):
    """A JPEG of the active page's viewport at CSS pixel scale: its pixels are the coordinates actions take."""
    return await _action(ctx, p, browser, idem, None, "screenshot")


@router.get("/cursor", response_model=ComputerResultOut, responses=_ERRORS)
async def cursor(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser) -> ComputerResultOut:
    """Where the pointer was last moved in this run (null before any pointer action), and the viewport."""
    return await _act(ctx, p, browser, computer.Action(kind="cursor"))


@router.post("/batch", response_model=ComputerBatchResultOut, responses=_ERRORS)
async def batch(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: BatchBody, idem: IdempotencyDep):
    """1 to 20 actions in order with nothing interleaved, stopping at the first refused or failed one."""
    actions = [action_of(a, a.action, f"actions.{i}.") for i, a in enumerate(body.actions)]
    for action in actions:  # every action's words checked before any runs
        computer.validate(action)

    async def make() -> ComputerBatchResultOut:
        async with access.hold(ctx, browser, actor=str(p.key_id)) as held:
            return ComputerBatchResultOut.of(await computer.batch(held, actions))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/clipboard", response_model=ClipboardReadOut, responses=_ERRORS)
async def read_clipboard(ctx: CtxDep, p: PrincipalDep, browser: PathBrowser) -> ClipboardReadOut:
    """The run's clipboard as text (what ctrl+c / ctrl+x took from the page, or the last write)."""
    async with access.hold(ctx, browser, actor=str(p.key_id)) as held:
        text, event_id = await computer.read_clipboard(held)
        return ClipboardReadOut(event_id=event_id, data=ClipboardReadDataOut(run_id=str(held.run_id), text=text))


@router.put("/clipboard", response_model=ClipboardWriteOut, responses=_ERRORS)
async def write_clipboard(
    ctx: CtxDep, p: PrincipalDep, browser: PathBrowser, body: ClipboardWrite, idem: IdempotencyDep
):
    """Replace the run's clipboard (at most 256 KiB of UTF-8; empty clears it). Nothing is pasted."""
    computer.check_clipboard(body.text)

    async def make() -> ClipboardWriteOut:
        async with access.hold(ctx, browser, actor=str(p.key_id)) as held:
            event_id = await computer.write_clipboard(held, body.text)
            return ClipboardWriteOut(
                event_id=event_id, data=ClipboardWriteDataOut(run_id=str(held.run_id), written=True)
            )

    return await idem.once(
        make, {"length": len(body.text), "sha256": hashlib.sha256(body.text.encode("utf-8")).hexdigest()}
    )

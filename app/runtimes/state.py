"""A runtime's saved state: the browser profile kept from one run to the next (the current generation's
`savedState`). The driver archives the profile when the browser stops (app/drivers/profile.py) and
unpacks it into the next launch's profile; the archive lives in the object store, the row says where.

One writer per profile: a runtime has at most one run at a time (the lifecycle's transitions), so
the archive is only ever written by the stop of the run that used it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from app.core import clock
from app.core.context import AppContext
from app.runtimes.models import Runtime, saved_state_key
from app.storage import make_store, new_key

log = structlog.get_logger(__name__)

NONE, SAVING, SAVED = "none", "saving", "saved"


def _scratch(ctx: AppContext) -> Path:
    path = ctx.settings.data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="state-", suffix=".tar.gz", dir=path)
    os.close(fd)
    return Path(name)


async def fetch(ctx: AppContext, runtime: Runtime) -> Path | None:
    """A local copy of the runtime's saved state for the next launch, or None (nothing saved, or this
    driver keeps none). The caller removes it once the browser has started."""
    saved = runtime.saved_state or {}
    key = saved_state_key(saved)
    if not ctx.driver.keeps_state or saved.get("status") != SAVED or key is None:
        return None
    target = _scratch(ctx)
    try:
        with target.open("wb") as out:
            async for chunk in make_store(ctx.settings).open(key):
                out.write(chunk)
    except Exception as exc:  # a store without the bytes: start clean, and say so (restored() below)
        log.warning("browser_state_unreadable", runtime_id=str(runtime.id), error=type(exc).__name__)
        target.write_bytes(b"")  # an empty archive reads as corrupt: the driver starts clean
    return target


def discard_file(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


async def mark(ctx: AppContext, runtime_id: uuid.UUID, values: dict[str, Any] | None) -> None:
    async with ctx.db.transaction() as s:
        runtime = await s.get(Runtime, runtime_id)
        if runtime is not None:
            runtime.saved_state = values


async def stop_and_save(ctx: AppContext, runtime_id: uuid.UUID, driver_state: dict, *, keep: bool) -> None:
    """Stop the browser; with `keep`, keep its profile as the runtime's saved state (replacing the last
    one), else drop what was saved. A state that cannot be saved leaves the previous one and a warning."""
    async with ctx.db.read() as s:
        previous = (await s.execute(select(Runtime.saved_state).where(Runtime.id == runtime_id))).scalar_one()
    previous = previous or {}
    previous_key = saved_state_key(previous)
    store = make_store(ctx.settings)
    if not keep or not ctx.driver.keeps_state:
        await ctx.driver.stop(driver_state)
        if previous_key:
            await _delete(store, previous_key)
        if previous:
            await mark(ctx, runtime_id, None)
        return
    await mark(ctx, runtime_id, {**previous, "status": SAVING})
    target = _scratch(ctx)
    try:
        size = await ctx.driver.stop(driver_state, save_to=target)
        if size is None:
            await mark(ctx, runtime_id, {"status": NONE})
        else:
            stored = await store.put_file(new_key("browser-state"), target)
            await mark(
                ctx,
                runtime_id,
                {"status": SAVED, "key": stored.key, "sizeBytes": stored.size, "savedAt": clock.iso(clock.now())},
            )
        if previous_key:
            await _delete(store, previous_key)
    except Exception as exc:
        log.warning("browser_state_not_saved", runtime_id=str(runtime_id), error=str(exc)[:200])
        kept = {k: v for k, v in previous.items() if k != "warning"}
        await mark(
            ctx,
            runtime_id,
            {**(kept or {"status": NONE}), "warning": f"The last run's state could not be saved: {exc}"[:300]},
        )
    finally:
        discard_file(target)


async def restored(ctx: AppContext, runtime_id: uuid.UUID, warning: str | None) -> None:
    """After a launch: a state that could not be restored is dropped, and the warning stays on the row."""
    if warning is None:
        return
    async with ctx.db.transaction() as s:
        runtime = await s.get(Runtime, runtime_id)
        key = saved_state_key(runtime.saved_state) if runtime else None
        if runtime is not None:
            runtime.saved_state = {"status": NONE, "warning": warning}
    if key:
        await _delete(make_store(ctx.settings), key)


async def forget(ctx: AppContext, saved_state: dict | None) -> None:
    """A deleted runtime's saved state goes with it."""
    key = saved_state_key(saved_state)
    if key:
        await _delete(make_store(ctx.settings), key)


async def _delete(store, key: str) -> None:
    try:
        await store.delete(key)
    except Exception:
        log.warning("browser_state_not_deleted", key=key)

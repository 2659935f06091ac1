from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class RuntimeStatus:
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    ALL = (STARTING, ACTIVE, STOPPING, STOPPED, FAILED)
    # Statuses that hold a browser (and so count against the capacity limit).
    LIVE = (STARTING, ACTIVE, STOPPING)
    STARTABLE = (STOPPED, FAILED)


class Runtime(Base):
    __tablename__ = "runtimes"
    __table_args__ = (Index("ix_runtimes_status", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]]
    # How a current-generation browser is launched beyond `config` (wire words of that generation's
    # create: headless, proxy, extensions, networkTraffic, webRtcProxyOnly); app/runtimes/launch_extras.py
    # turns it into launch settings.
    launch_options: Mapped[dict[str, Any] | None]
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    recording: Mapped[bool] = mapped_column(Boolean, default=True)
    idle_timeout_seconds: Mapped[int | None]
    active_run_id: Mapped[uuid.UUID | None]
    driver: Mapped[str] = mapped_column(String(16))
    # What the driver needs to find the browser again (pid, port, container id...). Never on the wire.
    driver_state: Mapped[dict[str, Any] | None]
    failure: Mapped[dict[str, Any] | None]
    status_changed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Deleted runtimes disappear from the API but their runs stay readable.
    deleted_at: Mapped[datetime | None]
    # Who controls the browser (app/runtimes/controller.py): the truth the lock cache is rebuilt from.
    # The epoch grows on every take, so a holder's token names the take it came from.
    controller_kind: Mapped[str | None] = mapped_column(String(16))
    controller_id: Mapped[str | None] = mapped_column(String(64))
    controller_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    controller_expires_at: Mapped[datetime | None]
    # When the controller last changed hands (taken or released): the current generation's `control.since`.
    controller_since: Mapped[datetime | None]
    # Whether the browser's profile is kept from one run to the next (the current generation's browsers);
    # the older generations' runtimes start clean every time (their `backing` is `ephemeral`).
    keep_state: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The browser's profile kept between runs (app/runtimes/state.py): {status, key, sizeBytes, savedAt,
    # warning}; None: nothing saved.
    saved_state: Mapped[dict[str, Any] | None]
    # Deleted by the sweep after this many days without a run (None: kept).
    expire_after_idle_days: Mapped[int | None]
    last_used_at: Mapped[datetime | None]


def saved_state_key(saved_state: Any) -> str | None:
    """The object-store key of a runtime's saved-state archive (its `saved_state` column), or None when
    nothing is saved. The one reader of that key: the state's lifecycle (app/runtimes/state.py) and the
    deletion of a space's bytes (app/spaces/service.py) both go through it."""
    key = saved_state.get("key") if isinstance(saved_state, dict) else None
    return key if isinstance(key, str) and key else None


class ServerProcess(Base):
    """A server process that is (or was) running, with its heartbeat: sockets attached through a process
    found dead are detached by the sweep of another."""

    __tablename__ = "server_processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the driver's instance id
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    process_start: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]

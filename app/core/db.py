"""Database engine, session scopes and the declarative base shared by every table."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import JSON, DateTime, MetaData, Uuid, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.core import ids

log = structlog.get_logger(__name__)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both backends (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
    }


SQLITE_BUSY_SECONDS = 30


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Transactions are begun by _sqlite_begin below, not by the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.close()


READ_ONLY = "bctrl_read_only"


def _sqlite_begin(conn) -> None:
    """Take SQLite's write lock when a transaction begins (waiting up to busy_timeout): a transaction
    that read first and writes later would otherwise be refused the write, at once, whenever another
    connection committed in between. Transactions here are short, and SQLite has one writer anyway.
    A read-only one (Database.read) begins deferred: in WAL mode readers never wait for the writer."""
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_serializer=_json, json_deserializer=orjson.loads
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # An outage must answer quickly (503 database.unavailable), not hang: connects give up after 5 s
    # (asyncpg waits 60 s), a request waits at most 10 s for a pooled connection. Pre-ping replaces
    # connections a restart killed, so the server recovers by itself on the first request after.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5},
        json_serializer=_json,
        json_deserializer=orjson.loads,
    )


# session.info key under which event writers list the runs they appended to.
TOUCHED_RUNS = "touched_runs"
# session.info key of coroutine functions to run once the transaction has committed (cache writes):
# their failures are logged, never raised, since the committed work stands.
AFTER_COMMIT = "after_commit"


class Database:
    """Owns the engine; services open short transactions with `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; SQLite begins these deferred, PostgreSQL marks them READ ONLY (a write in one fails).
        reader = self.engine.execution_options(**{READ_ONLY: True}, postgresql_readonly=self.is_postgres)
        self._read_sessions = async_sessionmaker(reader, expire_on_commit=False)
        self._write_lock = None if self.is_postgres else asyncio.Lock()
        # Called after a commit with the runs that got new events (streams wake up on it).
        self.on_events_committed: Callable[[set], Awaitable[None]] | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        async with self._writer_turn(), self._sessions() as session:
            async with session.begin():
                yield session
            touched = session.info.pop(TOUCHED_RUNS, None)
            after = session.info.pop(AFTER_COMMIT, None)
        for callback in after or ():
            try:
                await callback()
            except Exception:
                log.warning("after_commit_failed", exc_info=True)
        if touched and self.on_events_committed is not None:
            # Only a wake-up for readers (who also poll): it must never fail or delay the committed work.
            try:
                await asyncio.wait_for(self.on_events_committed(touched), 1.0)
            except Exception:
                log.warning("event_notification_failed", exc_info=True)

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        """SQLite has one writer: this process's writers queue here, in order, instead of in SQLite's busy
        handler, whose growing sleeps gave a write p99 of a second under 20 clients. (Other processes on
        the same file still meet the busy handler.) A turn waits at most busy_timeout, then fails as
        SQLite would have ("database is locked", a 503)."""
        if self._write_lock is None:
            yield
            return
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the lock is granted, and a task being stopped (a sweep at shutdown) runs on.
            async with asyncio.timeout(SQLITE_BUSY_SECONDS):
                await self._write_lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked (waited for this process's other writers)") from None
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A transaction that only reads: it takes no write lock, so reads never queue behind writes."""
        async with self._read_sessions() as session:
            async with session.begin():
                yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_owned(db: Database, model: type, raw_id: str, account_id: uuid.UUID):
    """The row of `model` with id `raw_id` if it belongs to the account, else None (a malformed id too):
    callers answer 404 either way, so other accounts' ids cannot be probed."""
    row_id = ids.parse_uuid(raw_id)
    if row_id is None:
        return None
    async with db.read() as s:
        row = await s.get(model, row_id)
    return row if row is not None and row.account_id == account_id else None

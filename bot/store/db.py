"""The store's connections: one interface (``Database``, ``Session``) over SQLite and PostgreSQL.

SQL is written once, with ``?`` placeholders and syntax both dialects accept (``INSERT ... ON
CONFLICT``, ``RETURNING``); the PostgreSQL side numbers the placeholders (bot/store/postgres.py).
``Database(path)`` opens the SQLite file, ``Database(PostgresUrl(...))`` a connection pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

import aiosqlite

from bot.errors import ConfigError
from bot.store.migrate import apply_migrations
from bot.store.url import PostgresUrl, parse_location

Params = Sequence[object]
# RETURNING needs SQLite 3.35 (2021); Debian 12 and the python:3.11 images have 3.40.
MIN_SQLITE = (3, 35, 0)


class Record(Protocol):
    """A result row (sqlite3.Row or asyncpg.Record): read by position."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class Dialect(StrEnum):
    """Which SQL the store speaks; the few statements that differ ask it."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Session(Protocol):
    """Statements on one connection; inside ``Database.transaction()`` they commit together."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]: ...


class Hold:
    """A process-wide lock taken with ``Database.try_hold``: ``lost`` is set if it goes away
    while this process still runs (its connection dropped); ``release`` gives it up.

    This base class is SQLite's: one process, nothing to share, so it is never lost.
    """

    def __init__(self) -> None:
        self.lost = asyncio.Event()

    async def check(self) -> None:
        """Make sure the lock is still held; sets ``lost`` if not."""

    async def release(self) -> None:
        """Give the lock up (closing the store releases every lock too)."""


class Database:
    """The store: ``Database(target)`` is a ``SqliteDatabase`` for a path and a
    ``PostgresDatabase`` for a ``PostgresUrl`` (or a string naming either).

    Used as ``async with Database(target) as db``: opening brings the schema up to date.
    Outside a transaction, ``db`` runs statements itself (as a ``Session``). The methods
    below are those every store has; each subclass implements all of them.
    """

    dialect: ClassVar[Dialect]
    #: The newest migration applied, once open.
    schema_version: int = 0
    #: The schema version found on opening, before any migration ran.
    migrated_from: int = 0

    def __new__(cls, target: Path | PostgresUrl | str) -> Database:
        if cls is Database:
            location = parse_location(target)
            if isinstance(location, PostgresUrl):
                from bot.store.postgres import PostgresDatabase

                return super().__new__(PostgresDatabase)
            return super().__new__(SqliteDatabase)
        return super().__new__(cls)

    @property
    def target(self) -> Path | PostgresUrl:
        """Where the store is (a PostgresUrl prints without its password)."""
        raise NotImplementedError

    async def open(self) -> Database:
        """Connect and migrate; a store that cannot be used raises ConfigError (one line)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """All statements inside commit together or not at all."""
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]:
        raise NotImplementedError

    async def try_hold(self, key: int) -> Hold | None:
        """Take the process-wide lock ``key`` until released or this store closes; None if
        another process holds it. SQLite serves one process: there is nothing to share."""
        return Hold()

    async def truncate_wal(self) -> None:
        """Leave no older copy of just-deleted rows in a write-ahead log (SQLite only)."""
        raise NotImplementedError

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _SqliteSession:
    """``Session`` over an aiosqlite connection."""

    dialect = Dialect.SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self.conn.execute(sql, params)
        try:
            return cursor.rowcount
        finally:
            await cursor.close()

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        cursor = await self.conn.executemany(sql, rows)
        await cursor.close()

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None:
        async with self.conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class SqliteDatabase(Database):
    """One connection per process; writes go through short ``BEGIN IMMEDIATE`` transactions."""

    dialect = Dialect.SQLITE

    def __init__(self, target: Path | str) -> None:
        self.path = Path(target)
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    @property
    def target(self) -> Path:
        return self.path

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def open(self) -> SqliteDatabase:
        """Open (creating the file and its directory) and bring the schema up to date.

        A path that cannot hold the database (no such directory and none can be made, not
        writable, a directory, a file that is not SQLite) raises ConfigError, with the
        connection and its thread closed so that the process can exit.
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise ConfigError(
                f"SQLite {sqlite3.sqlite_version} is too old: the bot needs 3.35 or newer"
            )
        try:
            await self._open()
        except BaseException as exc:
            await self._close_quietly()
            if isinstance(exc, sqlite3.Error | OSError):
                reason = str(exc)
                if isinstance(exc, OSError) and exc.strerror:
                    where = exc.filename if exc.filename not in (None, str(self.path)) else None
                    reason = exc.strerror + (f" ({where})" if where else "")
                raise ConfigError(
                    f"invalid setting BOT_DATABASE (database): cannot use {self.path}: {reason}"
                ) from None
            raise
        return self

    async def _open(self) -> None:
        if str(self.path) != ":memory:":
            if self.path.is_dir():
                raise IsADirectoryError(21, "it is a directory", str(self.path))
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
            "PRAGMA synchronous=NORMAL",
            # Deleted rows (a /forgetme, expired counts) are overwritten, not left in free pages.
            "PRAGMA secure_delete=ON",
        ):
            await self._conn.execute(pragma)
        self.migrated_from, self.schema_version = await apply_migrations(self._conn)

    async def _close_quietly(self) -> None:
        try:
            await self.close()
        except Exception:
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def truncate_wal(self) -> None:
        """Fold the write-ahead log into the database file and empty it, so rows just deleted
        (zeroed in the file by secure_delete) leave no older copy behind in the log."""
        async with self._write_lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteSession(self.conn)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await _SqliteSession(self.conn).execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await _SqliteSession(self.conn).executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None:
        return await _SqliteSession(self.conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]:
        return await _SqliteSession(self.conn).fetchall(sql, params)

"""aiosqlite connection with our PRAGMAs (WAL, foreign keys, busy timeout) and `transaction()`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.errors import ConfigError
from bot.store.migrate import apply_migrations


class Database:
    """One connection per process; writes go through short ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def open(self) -> Database:
        """Open (creating the file and its directory) and bring the schema up to date.

        A path that cannot hold the database (no such directory and none can be made, not
        writable, a directory, a file that is not SQLite) raises ConfigError, with the
        connection and its thread closed so that the process can exit.
        """
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
        await apply_migrations(self._conn)

    async def _close_quietly(self) -> None:
        try:
            await self.close()
        except Exception:
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def truncate_wal(self) -> None:
        """Fold the write-ahead log into the database file and empty it, so rows just deleted
        (zeroed in the file by secure_delete) leave no older copy behind in the log."""
        async with self._write_lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """All statements inside commit together or not at all."""
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

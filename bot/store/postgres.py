"""The PostgreSQL store: an asyncpg connection pool behind the ``Database`` interface.

The repository's SQL uses ``?`` placeholders; here they become ``$1, $2 ...`` (outside quoted
literals), translated once per statement text.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.errors import ConfigError, StoreUnavailable
from bot.store.db import Database, Dialect, Hold, Params, Record, Session
from bot.store.migrate import apply_postgres_migrations
from bot.store.url import PostgresUrl, parse_location

POOL_SIZE: Final = 10
CONNECT_TIMEOUT: Final = 10.0
# What asyncpg raises for a server that is away, refuses us or is misconfigured.
CONNECTION_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ValueError,
)


# The server is away, restarting or refusing connections for now: worth trying again later.
OUTAGE_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


@contextmanager
def outage_as_unavailable() -> Iterator[None]:
    """Driver errors that mean "the server is not there" become StoreUnavailable, which callers
    can wait out without knowing the driver."""
    try:
        yield
    except OUTAGE_ERRORS as exc:
        raise StoreUnavailable(f"the database is unavailable: {type(exc).__name__}") from exc


def _lost(conn: PoolConnectionProxy[asyncpg.Record]) -> bool:
    """Whether a connection we still hold is gone: closed, or already taken back by the pool,
    which asyncpg does when the server ends the session."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2 ...``; a ``?`` inside '...' stays."""
    out: list[str] = []
    number = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?" and not quoted:
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def rows_changed(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 3``, ``UPDATE 2`` or ``DELETE 0``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresSession:
    """``Session`` over an asyncpg connection or pool (which acquires one per statement)."""

    dialect = Dialect.POSTGRES

    def __init__(
        self, conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record] | asyncpg.Pool
    ) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        with outage_as_unavailable():
            return rows_changed(await self.conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with outage_as_unavailable():
            await self.conn.executemany(numbered(sql), rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None:
        with outage_as_unavailable():
            row: Record | None = await self.conn.fetchrow(numbered(sql), *params)
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]:
        with outage_as_unavailable():
            return list(await self.conn.fetch(numbered(sql), *params))


class SessionHold(Hold):
    """An advisory lock held by the session of ``conn``: lost when that connection is."""

    def __init__(self, conn: asyncpg.Connection, holding: list[SessionHold]) -> None:
        super().__init__()
        self.conn = conn
        self._holding = holding
        conn.add_termination_listener(lambda _: self.lost.set())

    async def check(self) -> None:
        """A round trip on the lock's connection: a cut that closed no socket shows here."""
        if self.lost.is_set():
            return
        try:
            await self.conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
        except CONNECTION_ERRORS:
            self.lost.set()

    async def release(self) -> None:
        if self in self._holding:
            self._holding.remove(self)
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.conn.close(timeout=5)


class PostgresDatabase(Database):
    """A pool of up to ``POOL_SIZE`` connections; each transaction holds one of them."""

    dialect = Dialect.POSTGRES

    def __init__(self, target: PostgresUrl | str) -> None:
        location = parse_location(target)
        if not isinstance(location, PostgresUrl):
            raise TypeError(f"{location} is not a PostgreSQL URL")
        self.url = location
        self._pool: asyncpg.Pool | None = None
        self._holding: list[SessionHold] = []

    @property
    def target(self) -> PostgresUrl:
        return self.url

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def open(self) -> PostgresDatabase:
        """Connect and bring the schema up to date; a server that cannot be reached, refuses
        the login or lacks the database raises ConfigError (one line, no password)."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url.dsn,
                # No floor of idle connections: asyncpg would keep re-opening it through an
                # outage, logging a traceback each time; connections open on demand instead.
                min_size=0,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": "advocacy-fact-bot"},
            )
            async with self._pool.acquire() as conn:
                self.migrated_from, self.schema_version = await apply_postgres_migrations(conn)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, CONNECTION_ERRORS):
                raise ConfigError(
                    f"invalid setting BOT_DATABASE (database): cannot use {self.url}: "
                    f"{self.scrubbed(exc)}"
                ) from None
            raise
        return self

    def scrubbed(self, exc: BaseException) -> str:
        """The reason of ``exc`` in one line, the password masked should a message echo it."""
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        reason = " ".join(reason.split()) or type(exc).__name__
        password = self.url.password
        return reason.replace(password, "***") if password else reason

    async def try_hold(self, key: int) -> SessionHold | None:
        """A session advisory lock on a connection of its own, kept until released or ``close``
        (or until this process dies: the server then ends the session and frees the lock)."""
        with outage_as_unavailable():
            conn = await asyncpg.connect(
                self.url.dsn,
                timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": "advocacy-fact-bot lock"},
            )
            try:
                held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            except BaseException:
                await conn.close()
                raise
        if not held:
            await conn.close()
            return None
        hold = SessionHold(conn, self._holding)
        self._holding.append(hold)
        return hold

    async def close(self) -> None:
        holding, self._holding = self._holding, []
        for hold in holding:
            await hold.release()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def truncate_wal(self) -> None:
        """Nothing to do: PostgreSQL recycles its write-ahead log itself."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        with outage_as_unavailable():
            async with self.pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        yield _PostgresSession(conn)
                except asyncpg.InterfaceError as exc:
                    # A session the server ended mid-transaction: the rollback fails with "the
                    # underlying connection is closed", which would hide the outage itself.
                    if _lost(conn):
                        raise StoreUnavailable("the database connection was lost") from exc
                    raise

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await _PostgresSession(self.pool).execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await _PostgresSession(self.pool).executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Record | None:
        return await _PostgresSession(self.pool).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Record]:
        return await _PostgresSession(self.pool).fetchall(sql, params)

"""A store left at an older schema version, as a bot of an earlier release left it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import asyncpg

from bot.store.db import Database
from bot.store.migrate import MIGRATIONS, POSTGRES_MIGRATIONS, migration_files
from bot.store.url import PostgresUrl


async def schema_at_version(database: Path | PostgresUrl, version: int) -> None:
    """Migrations 1 to ``version`` applied by hand, the way the migrator records them."""
    if isinstance(database, PostgresUrl):
        conn = await asyncpg.connect(database.dsn)
        try:
            await conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for number, path in migration_files(POSTGRES_MIGRATIONS)[:version]:
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    number,
                    path.name,
                )
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(database) as sqlite:
        for _, path in migration_files(MIGRATIONS)[:version]:
            await sqlite.executescript(path.read_text(encoding="utf-8"))
        await sqlite.execute(f"PRAGMA user_version = {int(version)}")
        await sqlite.commit()


@asynccontextmanager
async def upgraded(
    database: Path | PostgresUrl, version: int, *, named: str, rows: tuple[str, ...] = ()
) -> AsyncIterator[Database]:
    """The store as a release at ``version`` left it (``rows``: statements it wrote), opened by
    this one, which applies migration ``named`` (the next) and every later one."""
    assert migration_files()[version][1].name == named
    await schema_at_version(database, version)
    for statement in rows:
        await _write(database, statement)
    async with Database(database) as db:
        assert (db.migrated_from, db.schema_version) == (version, len(migration_files()))
        yield db


async def _write(database: Path | PostgresUrl, statement: str) -> None:
    if isinstance(database, PostgresUrl):
        conn = await asyncpg.connect(database.dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(database) as sqlite:
        await sqlite.execute(statement)
        await sqlite.commit()

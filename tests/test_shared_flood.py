"""Per-sender flood limits shared by the processes on one PostgreSQL database.

- Migration 0006 applies on both dialects (on SQLite it is empty: the buckets stay in memory).
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from bot.store.db import Database
from bot.store.migrate import MIGRATIONS, POSTGRES_MIGRATIONS, migration_files
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl

# -- migration 0006 ----------------------------------------------------------------------------


async def _schema_at_version_5(database: Path | PostgresUrl) -> None:
    """Migrations 1 to 5 applied by hand, as a bot of the previous release left the store."""
    if isinstance(database, PostgresUrl):
        conn = await asyncpg.connect(database.dsn)
        try:
            await conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for version, path in migration_files(POSTGRES_MIGRATIONS)[:5]:
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    version,
                    path.name,
                )
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(database) as sqlite:
        for _, path in migration_files(MIGRATIONS)[:5]:
            await sqlite.executescript(path.read_text(encoding="utf-8"))
        await sqlite.execute("PRAGMA user_version = 5")
        await sqlite.commit()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migration_0006_applies_on_both_dialects(
    backend: str, database: Path | PostgresUrl
) -> None:
    assert [p.name for _, p in migration_files()][5] == "0006_flood_buckets.sql"
    await _schema_at_version_5(database)
    async with Database(database) as db:
        assert len(migration_files()) == 6
        assert (db.migrated_from, db.schema_version) == (5, 6)
        if backend == "postgres":
            columns = await db.fetchall(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'flood_buckets' ORDER BY ordinal_position"
            )
            assert [c[0] for c in columns] == [
                "sender",
                "tokens",
                "updated_at",
                "full_at",
                "verdict",
            ]
        else:  # documented as empty: SQLite's buckets stay in memory
            tables = await db.fetchall(
                "SELECT name FROM sqlite_master WHERE name = 'flood_buckets'"
            )
            assert tables == []
            assert await Repository(db).purge_full_flood_buckets() == 0

"""A store left at an older schema version, as a bot of an earlier release left it."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import asyncpg

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

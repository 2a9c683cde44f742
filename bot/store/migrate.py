"""Numbered migrations, the same numbers for both dialects: bot/store/migrations/NNNN_name.sql for
SQLite (tracked by PRAGMA user_version) and bot/store/migrations/postgres/NNNN_name.sql for
PostgreSQL (tracked by the schema_version table, applied under an advisory lock)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
POSTGRES_MIGRATIONS = MIGRATIONS / "postgres"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_lock key of the migrations: any fixed number no other code of the bot uses.
MIGRATION_LOCK = 0x6164766F  # "advo"


def migration_files(directory: Path = MIGRATIONS) -> list[tuple[int, Path]]:
    """(version, path) of every migration, ascending; versions must be 1, 2, 3 ..."""
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)))
    for expected, (version, path) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(
                f"migration {path.name} breaks the sequence (expected {expected:04d})"
            )
    return found


async def apply_migrations(conn: aiosqlite.Connection) -> tuple[int, int]:
    """Bring a SQLite schema to the newest version, one transaction per file; returns the
    versions before and after."""
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = before = int(row[0]) if row else 0
    files = await asyncio.to_thread(migration_files)
    for version, path in files:
        if version <= current:
            continue
        sql = await asyncio.to_thread(path.read_text, encoding="utf-8")
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except Exception:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        logger.debug("store.migrated", extra={"version": version, "migration": path.name})
        current = version
    return before, current


async def apply_postgres_migrations(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
) -> tuple[int, int]:
    """Bring a PostgreSQL schema to the newest version, one transaction per file, holding an
    advisory lock throughout, so that processes starting together apply each file once;
    returns the versions before and after."""
    files = await asyncio.to_thread(migration_files, POSTGRES_MIGRATIONS)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        current = before = int(
            await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        )
        for version, path in files:
            if version <= current:
                continue
            sql = await asyncio.to_thread(path.read_text, encoding="utf-8")
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    version,
                    path.name,
                )
            logger.debug("store.migrated", extra={"version": version, "migration": path.name})
            current = version
    finally:
        if not conn.is_closed():  # a lost connection has released the lock with it
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return before, current

"""Applies bot/store/migrations/NNNN_name.sql in order, tracked by PRAGMA user_version."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import aiosqlite

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, Path]]:
    """(version, path) of every migration, ascending; versions must be 1, 2, 3 ..."""
    found = sorted(
        (int(m.group(1)), p) for p in MIGRATIONS.iterdir() if (m := _NAME.match(p.name))
    )
    for expected, (version, path) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(
                f"migration {path.name} breaks the sequence (expected {expected:04d})"
            )
    return found


async def apply_migrations(conn: aiosqlite.Connection) -> int:
    """Bring the schema to the newest version, one transaction per file; returns the version."""
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
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
    return current

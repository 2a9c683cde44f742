"""Online backup and checked restore of the SQLite store."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from bot.errors import ConfigError
from bot.store.migrate import apply_migrations


async def _integrity(conn: aiosqlite.Connection) -> str:
    async with conn.execute("PRAGMA integrity_check") as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else "no answer"


async def backup(database: Path, target: Path) -> None:
    """Copy ``database`` to ``target`` page by page while the bot may be writing to it."""
    if not database.exists():
        raise ConfigError(f"there is no database at {database}")
    target.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(database) as source, aiosqlite.connect(target) as copy:
        await source.backup(copy)
        result = await _integrity(copy)
    if result != "ok":
        raise ConfigError(f"the backup failed its integrity check: {result}")


async def restore(database: Path, source_file: Path) -> None:
    """Check a backup, then copy it over ``database`` (stop the bot first)."""
    if not source_file.exists():
        raise ConfigError(f"there is no backup at {source_file}")
    async with aiosqlite.connect(source_file) as source:
        result = await _integrity(source)
        if result != "ok":
            raise ConfigError(f"{source_file} failed its integrity check: {result}")
        database.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(database) as live:
            await source.backup(live)
            await apply_migrations(live)

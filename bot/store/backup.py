"""Backup and checked restore of the store: SQLite's online backup, or PostgreSQL's pg_dump and
pg_restore (custom format) when they are installed."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from pathlib import Path

import aiosqlite

from bot.errors import ConfigError
from bot.store.migrate import apply_migrations, migration_files
from bot.store.url import PostgresUrl

_TABLE_CHANGE = re.compile(
    r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<created>\w+)"
    r"|\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<dropped>\w+)"
    r"|\bALTER\s+TABLE\s+(?P<renamed>\w+)\s+RENAME\s+TO\s+(?P<to>\w+)",
    re.IGNORECASE,
)


async def _integrity(conn: aiosqlite.Connection) -> str:
    async with conn.execute("PRAGMA integrity_check") as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else "no answer"


def _expected_tables(version: int) -> set[str]:
    """The tables the migrations up to ``version`` leave behind."""
    tables: set[str] = set()
    for number, path in migration_files():
        if number > version:
            break
        for change in _TABLE_CHANGE.finditer(path.read_text(encoding="utf-8")):
            if change["created"]:
                tables.add(change["created"].lower())
            elif change["dropped"]:
                tables.discard(change["dropped"].lower())
            else:
                tables.discard(change["renamed"].lower())
                tables.add(change["to"].lower())
    return tables


async def _not_a_backup(conn: aiosqlite.Connection) -> str | None:
    """Why the database behind ``conn`` is not the bot's (None when it is)."""
    result = await _integrity(conn)
    if result != "ok":
        return f"it failed its integrity check: {result}"
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    newest = len(await asyncio.to_thread(migration_files))
    if version < 1:
        return "it has none of the bot's tables"
    if version > newest:
        return f"it has schema version {version}, newer than this bot's {newest}"
    async with conn.execute("SELECT lower(name) FROM sqlite_master WHERE type = 'table'") as cur:
        present = {str(r[0]) for r in await cur.fetchall()}
    missing = await asyncio.to_thread(_expected_tables, version) - present
    if missing:
        return "it lacks the bot's tables " + ", ".join(sorted(missing))
    return None


async def backup(database: Path | PostgresUrl, target: Path) -> None:
    """Copy ``database`` to ``target`` while the bot may be writing to it: page by page for
    SQLite, a pg_dump archive for PostgreSQL."""
    if isinstance(database, PostgresUrl):
        return await _pg_backup(database, target)
    if not database.is_file():
        raise ConfigError(f"there is no database at {database}")
    if target.is_dir():
        raise ConfigError(f"cannot back up to {target}: it is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(database) as source, aiosqlite.connect(target) as copy:
            await source.backup(copy)
            result = await _integrity(copy)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(f"cannot back up {database} to {target}: {_reason(exc)}") from None
    if result != "ok":
        raise ConfigError(f"the backup failed its integrity check: {result}")


async def restore(database: Path | PostgresUrl, source_file: Path) -> None:
    """Check a backup, then copy it over ``database`` (stop the bot first).

    Nothing is written to ``database`` unless ``source_file`` is an intact SQLite database
    with the bot's schema (tables and a schema version this bot knows), or for PostgreSQL a
    pg_dump archive of the bot's database.
    """
    if not source_file.exists():
        raise ConfigError(f"there is no backup at {source_file}")
    if not source_file.is_file():
        raise ConfigError(f"{source_file} is not a backup of the bot's database: not a file")
    if isinstance(database, PostgresUrl):
        return await _pg_restore(database, source_file)
    if database.is_dir():
        raise ConfigError(f"invalid setting BOT_DATABASE (database): {database} is a directory")
    not_a_backup = f"{source_file} is not a backup of the bot's database"
    try:
        source = await aiosqlite.connect(source_file)
    except sqlite3.Error as exc:
        raise ConfigError(f"{not_a_backup}: {exc}") from None
    try:
        try:
            problem = await _not_a_backup(source)
        except sqlite3.Error as exc:
            problem = str(exc)
        if problem:
            raise ConfigError(f"{not_a_backup}: {problem}")
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
            async with aiosqlite.connect(database) as live:
                await source.backup(live)
                await apply_migrations(live)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(
                f"cannot restore {source_file} into {database}: {_reason(exc)}"
            ) from None
    finally:
        await source.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)


def _pg_tool(name: str, purpose: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not installed (Debian: apt-get install postgresql-client): {purpose} "
            f"the PostgreSQL database with {name} or your usual PostgreSQL tools instead"
        )
    return found


async def _pg_run(url: PostgresUrl, *command: str) -> tuple[int, str, str]:
    """Run a PostgreSQL client tool; the password goes in its environment, never its argv."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = url.password
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    text = err.decode("utf-8", "replace")
    if url.password:
        text = text.replace(url.password, "***")
    return proc.returncode, out.decode("utf-8", "replace"), text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


async def _pg_backup(url: PostgresUrl, target: Path) -> None:
    pg_dump = _pg_tool("pg_dump", "back up")
    if target.is_dir():
        raise ConfigError(f"cannot back up to {target}: it is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot back up {url} to {target}: {_reason(exc)}") from None
    status, _, err = await _pg_run(
        url,
        pg_dump,
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        "--file",
        str(target),
        "--dbname",
        url.without_password(),
    )
    if status != 0:
        target.unlink(missing_ok=True)
        raise ConfigError(f"cannot back up {url} to {target}: {_last_line(err)}")


async def _pg_restore(url: PostgresUrl, source_file: Path) -> None:
    pg_restore = _pg_tool("pg_restore", "restore")
    not_a_backup = f"{source_file} is not a backup of the bot's database"
    status, listing, err = await _pg_run(url, pg_restore, "--list", str(source_file))
    if status != 0:
        raise ConfigError(f"{not_a_backup}: {_last_line(err)}")
    tables = set(re.findall(r"\bTABLE \S+ (\w+) ", listing))
    if "schema_version" not in tables:
        raise ConfigError(f"{not_a_backup}: it has no schema_version table")
    status, _, err = await _pg_run(
        url,
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
        url.without_password(),
        str(source_file),
    )
    if status != 0:
        raise ConfigError(f"cannot restore {source_file} into {url}: {_last_line(err)}")
    from bot.store.db import Database

    async with Database(url):  # brings an older backup's schema up to date
        pass

"""Bad settings: one line on stderr naming the setting and what is wrong, exit 2, no hang."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support.cli import one_error_line, run_bot

from bot import config
from bot.config import Settings
from bot.store.db import Database

# Reaches the database first: the token makes `run` start, nothing listens on port 9.
TELEGRAM = {
    "BOT_TELEGRAM__TOKEN": "123456:ABCDEF",
    "BOT_TELEGRAM__BASE_URL": "http://127.0.0.1:9/bot",
}


# -- environment variables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "admins"),
    [
        ("telegram:1001", ["telegram:1001"]),
        ("telegram:1, matrix:@alice:example.org", ["telegram:1", "matrix:@alice:example.org"]),
        (
            '["telegram:1", "matrix:@alice:example.org"]',
            ["telegram:1", "matrix:@alice:example.org"],
        ),
        ("", []),
    ],
)
def test_admins_as_people_write_them(
    monkeypatch: pytest.MonkeyPatch, value: str, admins: list[str]
) -> None:
    monkeypatch.setenv("BOT_ADMINS", value)
    assert Settings.from_environment().admins == admins


def test_admin_that_is_no_platform_id() -> None:
    line = one_error_line(run_bot("ask", "x", env={"BOT_ADMINS": "alice"}), "BOT_ADMINS", "alice")
    assert "telegram:<numeric id>" in line


def test_list_with_broken_json_names_its_variable() -> None:
    env = {"BOT_MATRIX__HOMESERVER": "https://m.example", "BOT_MATRIX__ALLOWED_INVITERS": '["x"'}
    line = one_error_line(run_bot("ask", "x", env=env), "BOT_MATRIX__ALLOWED_INVITERS", "JSON")
    assert '["a", "b"]' in line


def test_invalid_value_names_the_variable() -> None:
    one_error_line(
        run_bot("ask", "x", env={"BOT_TELEGRAM__PORT": "many"}), "BOT_TELEGRAM__PORT", "integer"
    )


def test_unknown_log_level() -> None:
    line = one_error_line(run_bot("ask", "x", env={"BOT_LOG_LEVEL": "LOUD"}), "BOT_LOG_LEVEL")
    assert "LOUD" in line
    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert level in line


def test_log_level_in_lower_case_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_LOG_LEVEL", "debug")
    assert Settings.from_environment().log_level == "debug"


# -- the config file ---------------------------------------------------------------------------


def test_config_file_with_a_syntax_error(tmp_path: Path) -> None:
    toml = tmp_path / "bot.toml"
    toml.write_text('log_level = "INFO"\n\n[telegram\nport = 1\n', encoding="utf-8")
    line = one_error_line(run_bot("ask", "x", env={"BOT_CONFIG": str(toml)}), str(toml))
    assert "line 3" in line and "column" in line


def test_config_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    one_error_line(
        run_bot("ask", "x", env={"BOT_CONFIG": str(missing)}), "BOT_CONFIG", str(missing)
    )


def test_config_file_is_a_directory(tmp_path: Path) -> None:
    one_error_line(
        run_bot("ask", "x", env={"BOT_CONFIG": str(tmp_path)}), "BOT_CONFIG", "directory"
    )


def test_default_config_file_may_be_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    monkeypatch.delenv("BOT_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    assert not (tmp_path / config.DEFAULT_CONFIG).exists()
    assert Settings.from_environment().database == Path("data/bot.sqlite3")


# -- the database ------------------------------------------------------------------------------


def not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "text.sqlite3"
    path.write_text("x" * 99 + "\n", encoding="utf-8")
    return path


def bad_databases(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    (tmp_path / "a-directory").mkdir()
    return {
        "uncreatable directory": tmp_path / "a-file" / "sub" / "bot.sqlite3",
        "directory": tmp_path / "a-directory",
        "not sqlite": not_sqlite(tmp_path),
    }


@pytest.mark.parametrize("case", ["uncreatable directory", "directory", "not sqlite"])
@pytest.mark.parametrize("command", ["run", "chat"])
def test_unusable_database(tmp_path: Path, case: str, command: str) -> None:
    database = bad_databases(tmp_path)[case]
    env = {**TELEGRAM, "BOT_DATABASE": str(database)}
    one_error_line(run_bot(command, env=env, timeout=30), "BOT_DATABASE", str(database))


def test_database_that_is_not_sqlite_with_ask(tmp_path: Path) -> None:
    database = not_sqlite(tmp_path)
    env = {"BOT_DATABASE": str(database)}
    one_error_line(run_bot("ask", "x", env=env, timeout=30), "BOT_DATABASE", "not a database")


def test_a_sqlite_url_is_its_file(tmp_path: Path) -> None:
    """SQLAlchemy's sqlite:///relative and sqlite:////absolute forms name the file; a bare
    sqlite:// (an in-memory database, which would lose everything) is refused."""
    assert Settings(database="sqlite:///data/x.sqlite3").database == Path("data/x.sqlite3")
    database = tmp_path / "by-url.sqlite3"
    proc = run_bot("db", "migrate", env={"BOT_DATABASE": f"sqlite:///{database}"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sqlite3.connect(database).execute("select count(*) from chat_settings").fetchone()
    one_error_line(
        run_bot("ask", "x", env={"BOT_DATABASE": "sqlite://"}), "BOT_DATABASE", "sqlite://"
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_database_in_a_directory_nobody_can_write() -> None:
    # /proc refuses new files even to root, unlike a chmod-ed directory.
    env = {**TELEGRAM, "BOT_DATABASE": "/proc/bot.sqlite3"}
    one_error_line(run_bot("run", env=env, timeout=30), "BOT_DATABASE", "/proc/bot.sqlite3")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_database_in_an_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        env = {**TELEGRAM, "BOT_DATABASE": str(locked / "bot.sqlite3")}
        one_error_line(run_bot("run", env=env, timeout=30), "BOT_DATABASE", str(locked))
    finally:
        locked.chmod(0o755)


# -- restore -----------------------------------------------------------------------------------


@pytest.fixture
async def live(tmp_path: Path) -> Path:
    database = tmp_path / "live.sqlite3"
    async with Database(database) as db:
        await db.conn.execute("INSERT INTO kv (key, value) VALUES ('marker', 'before')")
        await db.truncate_wal()
    return database


def sqlite_without_our_tables(tmp_path: Path) -> Path:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('hello')")
    conn.close()
    return path


@pytest.mark.parametrize("kind", ["text", "foreign sqlite"])
def test_restore_refuses_what_is_not_a_backup(tmp_path: Path, live: Path, kind: str) -> None:
    source = not_sqlite(tmp_path) if kind == "text" else sqlite_without_our_tables(tmp_path)
    before = live.read_bytes()
    proc = run_bot("db", "restore", str(source), env={"BOT_DATABASE": str(live)}, timeout=30)
    one_error_line(proc, str(source), "not a backup")
    assert live.read_bytes() == before


def test_restore_of_a_real_backup_still_works(tmp_path: Path, live: Path) -> None:
    env = {"BOT_DATABASE": str(live)}
    backup = tmp_path / "backup.sqlite3"
    assert run_bot("db", "backup", str(backup), env=env).returncode == 0
    proc = run_bot("db", "restore", str(backup), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "restore: done" in proc.stdout
    with sqlite3.connect(live) as conn:
        assert conn.execute("SELECT value FROM kv WHERE key = 'marker'").fetchone() == ("before",)
    conn.close()

"""PostgreSQL as the store: the setting, connection errors, migrations under the advisory lock,
`db migrate/backup/restore`, and /readyz through an outage of the server.

The repository's statements themselves run on both stores in test_store and test_alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.cli import free_port, one_error_line, run_bot
from support.postgres import PostgresServer, binaries_or_skip, running
from support.transports import recording_worker
from test_alerts import eventually, make_event

from bot.clock import SystemClock
from bot.config import Settings
from bot.domain import ChatRef, Platform
from bot.errors import StoreUnavailable
from bot.library import Library
from bot.ops import OpsServer
from bot.store.db import Database
from bot.store.migrate import POSTGRES_MIGRATIONS, migration_files
from bot.store.postgres import numbered
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl

CHAT = ChatRef(platform=Platform.TELEGRAM, chat_id="42")
PASSWORD = "s3cret-Pa55"


@pytest.fixture
async def url(postgres: PostgresServer) -> AsyncIterator[PostgresUrl]:
    async with postgres.database() as database:
        yield database


# -- the setting -------------------------------------------------------------------------------


def test_a_path_is_sqlite_and_a_url_is_postgresql_with_the_password_masked() -> None:
    assert Settings(database="data/x.sqlite3").database == Path("data/x.sqlite3")
    settings = Settings(database=f"postgresql://bot:{PASSWORD}@db.example:5433/facts")
    database = settings.database
    assert isinstance(database, PostgresUrl)
    assert (database.database, database.password) == ("facts", PASSWORD)
    assert str(database) == "postgresql://bot:***@db.example:5433/facts"
    assert PASSWORD not in repr(settings) + settings.model_dump_json()
    assert database.without_password() == "postgresql://bot@db.example:5433/facts"
    assert settings.local_dir == Path("data")  # not beside a file: there is none
    socket_form = PostgresUrl("postgresql:///facts?host=/run/postgresql")
    assert str(socket_form) == "postgresql:///facts?host=/run/postgresql"
    query_password = PostgresUrl(f"postgres://db/facts?user=bot&password={PASSWORD}")
    assert PASSWORD not in str(query_password) + query_password.without_password()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (f"postgresql://bot:{PASSWORD}@db:port/facts", "is not a valid PostgreSQL URL"),
        (f"postgresql://bot:{PASSWORD}@db:5432/", "names no database"),
        (f"mysql://bot:{PASSWORD}@db/facts", "neither a file path (SQLite) nor a postgresql://"),
    ],
)
def test_a_malformed_url_is_one_line_without_the_password(value: str, needle: str) -> None:
    proc = run_bot("db", "migrate", env={"BOT_DATABASE": value})
    line = one_error_line(proc, "BOT_DATABASE", needle)
    assert PASSWORD not in proc.stdout + proc.stderr, line


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    value = f"postgresql://bot:{PASSWORD}@127.0.0.1:{free_port()}/facts"
    proc = run_bot("db", "migrate", env={"BOT_DATABASE": value})
    one_error_line(proc, "BOT_DATABASE", "cannot use postgresql://bot:***@127.0.0.1:")
    assert PASSWORD not in proc.stdout + proc.stderr


async def test_a_wrong_password_is_one_line_without_it(url: PostgresUrl) -> None:
    """The test server trusts every local login, so this asks for a role that does not exist:
    the server's refusal is reported, the password that came with it is not."""
    wrong = PostgresUrl(url.dsn.replace("user=postgres", f"user=nobody&password={PASSWORD}"))
    proc = await asyncio.to_thread(run_bot, "db", "migrate", env={"BOT_DATABASE": wrong.dsn})
    one_error_line(proc, "cannot use", 'role "nobody" does not exist')
    assert PASSWORD not in proc.stdout + proc.stderr


# -- migrations --------------------------------------------------------------------------------


def test_both_dialects_have_the_same_migrations() -> None:
    sqlite = [(n, p.name) for n, p in migration_files()]
    postgres = [(n, p.name) for n, p in migration_files(POSTGRES_MIGRATIONS)]
    assert sqlite == postgres


async def test_processes_starting_together_migrate_once(url: PostgresUrl) -> None:
    """Five stores open the same empty database at once: the advisory lock lets one apply the
    migrations while the others wait, then find the schema up to date."""
    stores = [Database(url) for _ in range(5)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        newest = len(migration_files())
        assert sorted(s.migrated_from for s in stores) == [0] + [newest] * 4
        assert {s.schema_version for s in stores} == {newest}
        rows = await stores[0].fetchall("SELECT version, name FROM schema_version ORDER BY 1")
        assert [(r[0], r[1]) for r in rows] == [
            (n, p.name) for n, p in migration_files(POSTGRES_MIGRATIONS)
        ]
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_db_migrate_command(url: PostgresUrl) -> None:
    first = await asyncio.to_thread(run_bot, "db", "migrate", env={"BOT_DATABASE": url.dsn})
    assert first.returncode == 0, first.stderr
    newest = len(migration_files())
    assert first.stdout == f"migrate: {url} went from schema version 0 to {newest}\n"
    again = await asyncio.to_thread(run_bot, "db", "migrate", env={"BOT_DATABASE": url.dsn})
    assert again.stdout == f"migrate: {url} is up to date (schema version {newest})\n"


# -- backups -----------------------------------------------------------------------------------


async def test_backup_and_restore_through_pg_dump(url: PostgresUrl, tmp_path: Path) -> None:
    env = {"BOT_DATABASE": url.dsn}
    archive = tmp_path / "backups" / "bot.dump"
    async with Database(url) as db:
        await Repository(db).subscribe(CHAT, ["history"], 0)
    proc = await asyncio.to_thread(run_bot, "db", "backup", str(archive), env=env)
    assert (proc.returncode, proc.stdout) == (0, f"backup: done ({archive})\n"), proc.stderr
    async with Database(url) as db:
        await Repository(db).forget_chat(CHAT)
    proc = await asyncio.to_thread(run_bot, "db", "restore", str(archive), env=env)
    assert (proc.returncode, proc.stdout) == (0, f"restore: done ({archive})\n"), proc.stderr
    async with Database(url) as db:
        assert await Repository(db).subscriptions(CHAT) == ["history"]
        assert db.migrated_from == len(migration_files())

    not_a_dump = tmp_path / "notes.txt"
    not_a_dump.write_text("hello", encoding="utf-8")
    proc = await asyncio.to_thread(run_bot, "db", "restore", str(not_a_dump), env=env)
    one_error_line(proc, f"{not_a_dump} is not a backup of the bot's database")


def test_without_pg_dump_backup_says_what_to_use_instead(tmp_path: Path) -> None:
    env = {"BOT_DATABASE": f"postgresql://bot:{PASSWORD}@127.0.0.1/facts", "PATH": str(tmp_path)}
    proc = run_bot("db", "backup", str(tmp_path / "bot.dump"), env=env)
    one_error_line(proc, "pg_dump is not installed", "apt-get install postgresql-client")
    proc = run_bot("db", "restore", __file__, env=env)
    one_error_line(proc, "pg_restore is not installed")


# -- readiness through an outage ---------------------------------------------------------------


def test_placeholders_are_numbered_outside_quoted_literals() -> None:
    assert numbered("SELECT '?' || ?, x FROM t WHERE a = ? AND b IN (?, ?)") == (
        "SELECT '?' || $1, x FROM t WHERE a = $2 AND b IN ($3, $4)"
    )


async def test_a_connection_lost_inside_a_transaction_is_an_outage(url: PostgresUrl) -> None:
    """The server ends the session in the middle of a transaction (a restart, an admin's
    pg_terminate_backend): the rollback then fails with "the underlying connection is closed",
    which must not hide the outage that callers wait out (CI saw the alert worker die of it)."""
    async with Database(url) as db:
        with pytest.raises(StoreUnavailable):
            async with db.transaction() as conn:
                [pid] = await conn.fetchone("SELECT pg_backend_pid()") or [None]
                assert await db.fetchone("SELECT pg_terminate_backend(?)", (pid,)) == (True,)
                await conn.execute("SELECT 1")
        assert await db.fetchone("SELECT 2") == (2,)  # the pool serves again


async def test_an_outage_is_reported_by_readyz_and_waited_out_by_the_alerts(
    caplog: pytest.LogCaptureFixture, library: Library
) -> None:
    """Its own server, stopped in the middle: /readyz answers 503 with store false and the
    alert worker waits (one warning each, no traceback); once the server is back, /readyz
    answers 200 and an alert published then is delivered."""
    caplog.set_level(logging.INFO)
    with running(binaries_or_skip()) as server:
        async with server.database() as url, Database(url) as db:
            repository = Repository(db)
            await repository.subscribe(CHAT, ["history"], 0)
            stop = asyncio.Event()
            clock = SystemClock()
            worker, telegram = recording_worker(repository, library, Settings(database=url))
            ops = OpsServer("127.0.0.1", 0, repository, {}, stop)
            tasks = [asyncio.create_task(ops.run()), asyncio.create_task(worker.run(stop))]
            try:
                await ops.listening.wait()
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{ops.port}", trust_env=False
                ) as client:

                    async def ready() -> bool:
                        return (await client.get("/readyz")).status_code == 200

                    async def logged(message: str) -> bool:
                        return any(r.getMessage() == message for r in caplog.records)

                    assert (await client.get("/readyz")).json() == {"ready": True, "store": True}
                    await asyncio.to_thread(server.stop)
                    down = await client.get("/readyz")
                    assert (down.status_code, down.json()) == (
                        503,
                        {"ready": False, "store": False},
                    )
                    assert (await client.get("/healthz")).status_code == 200
                    await eventually(
                        lambda: logged("alerts.store_unavailable"), "the worker to notice"
                    )
                    assert not any(task.done() for task in tasks)

                    await asyncio.to_thread(server.start)
                    await eventually(ready, "/readyz after the restart")
                    await eventually(
                        lambda: logged("alerts.store_available"), "the worker to resume"
                    )
                    event = make_event("after-the-outage", "Alert after an outage")
                    assert await repository.publish_event(event, clock.now()) == 1
                    worker.wake()

                    async def delivered() -> bool:
                        return len(telegram.sent) == 1

                    await eventually(delivered, "the alert after the outage")
            finally:
                stop.set()
                await asyncio.gather(*tasks)
    assert [chat for chat, _ in telegram.sent] == [CHAT]
    for message in ("ops.store_unavailable", "alerts.store_unavailable"):
        warnings = [r for r in caplog.records if r.getMessage() == message]
        assert warnings and all(r.levelno == logging.WARNING for r in warnings), message
    assert all(r.exc_info is None for r in caplog.records)

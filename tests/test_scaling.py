"""Several bot processes on one database (issue 16, part 2).

- Roles: a process with ``BOT_ROLES=["updates"]`` answers but delivers no alerts; one with
  ``["alerts"]`` delivers the outbox and takes no updates.
- Polling stays single-process: on PostgreSQL a second ``python -m bot run`` that would poll
  says so in one line and exits with status 2.
- Webhook: two processes behind one address get the same update (Telegram delivering it again,
  to another process): one reply.
- An admin's new fact, saved through one process, is answered by another within a second.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest
from conftest import TELEGRAM_TOKEN as TOKEN
from support.curation import (
    ADMIN,
    ANSWER,
    DECLINED,
    EVIDENCE,
    ONE_SHOT,
    PREVIEW,
    QUESTION,
    SAVED,
    SOURCE_ID,
)
from support.environment import child_environment
from support.process import run_to_end
from support.telegram_emulator import TelegramEmulator
from test_alerts import (
    TOPIC,
    BotProcess,
    alert_counts,
    database_setting,
    equals,
    eventually,
    make_event,
    outbox_status,
    query,
)

from bot.app import serve
from bot.clock import SystemClock
from bot.config import MatrixSettings, Settings, TelegramSettings
from bot.errors import ConfigError
from bot.knowledge.models import Fact, KnowledgeBase
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def bot_env(
    emulator: TelegramEmulator, database: Path | PostgresUrl, **extra: str
) -> dict[str, str]:
    """The environment of a ``python -m bot run`` child process on ``database``."""
    env = child_environment()
    env.update(
        BOT_TELEGRAM__TOKEN=emulator.token,
        BOT_TELEGRAM__BASE_URL=emulator.base_url,
        BOT_TELEGRAM__POLL_TIMEOUT="1",
        BOT_DATABASE=database_setting(database),
    )
    env.update(extra)
    return env


# -- roles -------------------------------------------------------------------------------------


def test_roles_default_to_both_and_reject_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_ROLES", raising=False)
    assert Settings.from_environment().roles == ["updates", "alerts"]
    monkeypatch.setenv("BOT_ROLES", '["alerts"]')
    assert Settings.from_environment().roles == ["alerts"]
    for value, problem in [
        ('["updates", "polling"]', "'polling' is not a role"),
        ("[]", "a process needs a role"),
    ]:
        monkeypatch.setenv("BOT_ROLES", value)
        with pytest.raises(ConfigError) as caught:
            Settings.from_environment()
        message = str(caught.value)
        assert message.startswith("invalid setting BOT_ROLES (roles): " + problem), message
        assert "\n" not in message
    monkeypatch.setenv("BOT_ROLES", "updates")
    with pytest.raises(ConfigError, match=r"^invalid setting BOT_ROLES: not valid JSON"):
        Settings.from_environment()


async def test_an_updates_process_answers_and_an_alerts_process_delivers(
    emulator: TelegramEmulator, kb: KnowledgeBase, database: Path | PostgresUrl
) -> None:
    telegram = TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1)
    common = {"database": database, "telegram": telegram, "matrix": MatrixSettings()}
    user = 1001

    stop = asyncio.Event()
    answering = asyncio.create_task(serve(Settings(**common, roles=["updates"]), kb, stop))
    try:
        await emulator.wait_for("getUpdates", timeout=15)
        emulator.send_message(f"/subscribe {TOPIC}", user_id=user)
        emulator.send_message("article 33", user_id=user)
        calls = await emulator.wait_for("sendMessage", count=2)
        assert "Subscribed to" in calls[0].params["text"]
        assert "Article 33" in calls[1].params["text"]
        event = make_event("roles-alert", "Alert left to the alerts process")
        async with Database(database) as db:
            assert await Repository(db).publish_event(event, SystemClock().now()) == 1
        await asyncio.sleep(1.5)  # longer than a worker's poll interval
        assert alert_counts(emulator.calls, event.title.en) == {}
        assert await outbox_status(database, event.id) == {user: "pending"}
    finally:
        stop.set()
        assert await asyncio.wait_for(answering, 15) == 0

    started = time.monotonic()
    stop = asyncio.Event()
    delivering = asyncio.create_task(serve(Settings(**common, roles=["alerts"]), kb, stop))
    try:
        await eventually(
            lambda: equals(outbox_status(database, event.id), {user: "sent"}), "the alert"
        )
        assert alert_counts(emulator.calls, event.title.en) == {user: 1}
        emulator.send_message("article 33", user_id=user)
        await asyncio.sleep(1.0)
        later = [c.method for c in emulator.calls if c.time >= started]
        assert "getUpdates" not in later and "setWebhook" not in later
        assert [c for c in emulator.calls_to("sendMessage") if c.time >= started] == [
            c for c in emulator.calls_to("sendMessage") if "🔔" in c.params["text"]
        ]
    finally:
        stop.set()
        assert await asyncio.wait_for(delivering, 15) == 0


# -- one poller --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_second_poller_says_so_and_exits(
    emulator: TelegramEmulator, database: PostgresUrl, tmp_path: Path
) -> None:
    env = bot_env(emulator, database)
    async with BotProcess(emulator, env, tmp_path / "first.log") as first:
        await first.start()
        calls = len(emulator.calls)
        status, out, err = await run_to_end(env, "run")
        assert status == 2, out + err
        assert "Traceback" not in out + err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [
            "error: another bot process is already polling Telegram with this database: "
            "polling is single-process; stop that one, or serve a webhook "
            "(BOT_TELEGRAM__WEBHOOK_URL) to run several"
        ], err
        # It stopped before it called Telegram at all, and the first one still serves.
        assert {c.method for c in emulator.calls[calls:]} <= {"getUpdates"}
        emulator.send_message("article 33")
        [answer] = await emulator.wait_for("sendMessage")
        assert "Article 33" in answer.params["text"]
        await first.kill()
    # The lock was the dead process's session: the next poller starts.
    async with BotProcess(emulator, env, tmp_path / "next.log") as following:
        await following.start()
        assert await following.terminate() == 0


# -- webhook behind a proxy --------------------------------------------------------------------

SECRET = "s3cret-Token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_env(
    emulator: TelegramEmulator, database: Path | PostgresUrl, port: int, **extra: str
) -> dict[str, str]:
    return bot_env(
        emulator,
        database,
        BOT_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
        BOT_TELEGRAM__SECRET_TOKEN=SECRET,
        BOT_TELEGRAM__PORT=str(port),
        **extra,
    )


async def listening(port: int, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port} after {timeout} s") from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_webhook_processes_answer_an_update_once(
    emulator: TelegramEmulator, database: PostgresUrl, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}/telegram" for port in ports]
    async with (
        BotProcess(emulator, webhook_env(emulator, database, ports[0]), tmp_path / "a.log") as a,
        BotProcess(emulator, webhook_env(emulator, database, ports[1]), tmp_path / "b.log") as b,
    ):
        await asyncio.gather(a.spawn(), b.spawn())
        await asyncio.gather(*(listening(port) for port in ports))

        update = emulator.send_message("article 33", queue=False)
        statuses = await asyncio.gather(*(emulator.post_webhook(u, update, SECRET) for u in urls))
        assert statuses == [200, 200]
        [answer] = await emulator.wait_for("sendMessage")
        assert "Article 33" in answer.params["text"]
        # Telegram delivering it once more, to either, changes nothing.
        assert await emulator.post_webhook(urls[1], update, SECRET) == 200
        assert await emulator.post_webhook(urls[0], update, SECRET) == 200
        await asyncio.sleep(1.0)
        assert len(emulator.calls_to("sendMessage")) == 1

        # Each process answers what reaches it alone.
        for url in urls:
            await emulator.post_webhook(url, emulator.send_message("/help", queue=False), SECRET)
        await emulator.wait_for("sendMessage", count=3)
        rows = await query(database, "SELECT COUNT(*) FROM processed_updates")
        assert rows == [(3,)]
        assert "Traceback" not in await a.output() + await b.output()


# -- admin changes reach every process ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_fact_added_through_one_process_is_answered_by_another_within_a_second(
    emulator: TelegramEmulator, database: PostgresUrl, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    admin_url, other_url = (f"http://127.0.0.1:{port}/telegram" for port in ports)
    extra = {"BOT_ADMINS": f'["telegram:{ADMIN}"]', "BOT_QUESTIONS_PER_MINUTE": "1000"}
    async with (
        BotProcess(
            emulator, webhook_env(emulator, database, ports[0], **extra), tmp_path / "a.log"
        ) as admins_process,
        BotProcess(
            emulator, webhook_env(emulator, database, ports[1], **extra), tmp_path / "b.log"
        ) as other,
    ):
        await asyncio.gather(admins_process.spawn(), other.spawn())
        await asyncio.gather(*(listening(port) for port in ports))

        async def said(url: str, text: str, user: int) -> str:
            count = len(emulator.calls_to("sendMessage"))
            update = emulator.send_message(text, user_id=user, queue=False)
            assert await emulator.post_webhook(url, update, SECRET) == 200
            calls = await emulator.wait_for("sendMessage", count=count + 1)
            return str(calls[-1].params["text"])

        assert (await said(other_url, QUESTION, 7001)).startswith(DECLINED)
        await eventually(
            lambda: _contains(other.output(), "entries.listening"), "the other one to listen"
        )
        assert (await said(admin_url, ONE_SHOT, ADMIN)).startswith(PREVIEW)
        assert SAVED.match(await said(admin_url, "/confirm", ADMIN))
        saved = time.monotonic()

        user = 7002
        while ANSWER not in (reply := await said(other_url, QUESTION, user)):
            assert reply.startswith(DECLINED), reply
            assert time.monotonic() - saved < 1.0, "not answered within a second"
            await asyncio.sleep(0.05)
            user += 1
        elapsed = time.monotonic() - saved
        assert elapsed < 1.0, "not answered within a second"
        print(f"the other process answered with the new fact {elapsed:.2f} s after the save")
        output = await admins_process.output() + await other.output()
        assert "Traceback" not in output
        assert "entries.applied" in await other.output()


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_change_missed_while_the_listener_was_away_is_caught_up(
    emulator: TelegramEmulator, kb: KnowledgeBase, database: PostgresUrl
) -> None:
    settings = Settings(
        database=database,
        telegram=TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1),
        matrix=MatrixSettings(),
        questions_per_minute=1000,
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, kb, stop))
    conn = await asyncpg.connect(database.dsn)
    try:
        await emulator.wait_for("getUpdates", timeout=15)
        listener = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
        name = "advocacy-fact-bot listener"
        await eventually(lambda: _has_rows(conn, listener, name), "the listener")
        [(pid,)] = await conn.fetch(listener, name)
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        # Saved by "another process" and never announced: only a catch-up can bring it.
        fact = Fact.model_validate(
            {
                "id": "fact-the-zubrovka-accord-of-2031",
                "topics": [TOPIC],
                "answer": {"en": ANSWER},
                "sources": [SOURCE_ID],
                "evidence": EVIDENCE,
                "keywords": {"en": ["zubrovka accord", "zubrovka"]},
            }
        )
        async with Database(database) as db, db.transaction() as session:
            await Repository.save_entry_in(
                session, kind="fact", entry=fact, before=None, actor="test", action="add", now=1
            )
        await eventually(
            lambda: _has_rows(conn, listener + " AND pid <> $2", name, pid), "a new listener"
        )
        user = 7101
        while True:
            emulator.send_message(QUESTION, user_id=user)
            [*_, reply] = await emulator.wait_for("sendMessage", count=user - 7100)
            if ANSWER in reply.params["text"]:
                break
            assert user < 7150, "the missed fact never arrived"
            await asyncio.sleep(0.1)
            user += 1
    finally:
        await conn.close()
        stop.set()
        assert await asyncio.wait_for(serving, 15) == 0


async def _has_rows(conn: asyncpg.Connection, query: str, *args: object) -> bool:
    return bool(await conn.fetch(query, *args))


async def _contains(text: object, needle: str) -> bool:
    return needle in await text  # type: ignore[misc]

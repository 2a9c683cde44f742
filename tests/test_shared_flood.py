"""Per-sender flood limits shared by the processes on one PostgreSQL database.

- Two webhook processes behind one address: a sender whose messages alternate between them gets
  ``questions_per_minute`` answers in all and one "slow down"; another sender is unaffected.
- The database guard on the real server: one bucket for every process (whatever their clocks
  say), refilled on the database's clock, stored under a keyed pseudonym, deleted once full by
  the delivery worker's housekeeping; decided in memory, with one warning, while the database
  is away or stuck, and shared again once it answers.
- SQLite keeps the in-memory guard; migration 0006 applies on both dialects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import TELEGRAM_TOKEN
from pydantic import SecretStr
from support.migrations import upgraded
from support.postgres import binaries_or_skip, running
from support.process import SECRET, webhook_processes
from support.telegram_emulator import TelegramEmulator
from test_alerts import eventually, query
from test_flood import FakeClock

from bot.app import build_flood, flood_key
from bot.clock import Clock, SystemClock
from bot.config import Settings, TelegramSettings
from bot.core import Core
from bot.flood import PURGE_EVERY, LocalFloodLimit, SharedFloodLimit, Verdict
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl

SLOW_DOWN = "You are sending messages very fast"
KEY = b"k" * 32
SENDER = "telegram:4242"


class SkewedClock(FakeClock):
    """A process clock that is wrong by ``offset`` seconds and stands still."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.seconds += offset


def guard(
    db: Database, per_minute: int, clock: Clock | None = None, **kwargs: float
) -> SharedFloodLimit:
    return SharedFloodLimit(Repository(db), per_minute, clock or SystemClock(), KEY, **kwargs)


async def bucket_rows(url: PostgresUrl) -> list[tuple[Any, ...]]:
    return await query(
        url, "SELECT sender, tokens, updated_at, full_at, verdict FROM flood_buckets ORDER BY 1"
    )


# -- two webhook processes ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_sender_alternating_over_two_processes_gets_the_limit_once_in_all(
    emulator: TelegramEmulator, database: PostgresUrl, tmp_path: Path
) -> None:
    per_minute = 4  # a token comes back every 15 s: far longer than the exchange below
    flooder, other = 5001, 5002
    extra = {"BOT_QUESTIONS_PER_MINUTE": str(per_minute)}
    async with webhook_processes(emulator, database, tmp_path, **extra) as ([a, b], urls):

        def texts_to(chat: int) -> list[str]:
            return emulator.sent_texts(chat)

        # One message at a time, each to the other process; each waits for its check (the
        # bucket's row changes) and, unless the check said "silence", for its reply.
        sent = 2 * per_minute + 2
        for n in range(sent):
            before = await bucket_rows(database)
            replies = len(texts_to(flooder))
            update = emulator.send_message("article 33", user_id=flooder, queue=False)
            assert await emulator.post_webhook(urls[n % 2], update, SECRET) == 200

            async def checked(before: list[tuple[Any, ...]] = before) -> bool:
                rows = await bucket_rows(database)
                return bool(rows) and rows != before

            await eventually(checked, f"the check of message {n + 1}")
            *_, verdict = max(await bucket_rows(database), key=lambda row: row[2])
            if verdict != -1:
                await emulator.wait_for(
                    "sendMessage",
                    count=replies + 1,
                    timeout=15,
                    predicate=lambda c: c.params.get("chat_id") == flooder,
                )

        to_flooder = texts_to(flooder)
        answers = [t for t in to_flooder if "Article 33" in t]
        slow_downs = [t for t in to_flooder if t.startswith(SLOW_DOWN)]
        assert (len(answers), len(slow_downs), len(to_flooder)) == (per_minute, 1, per_minute + 1)
        # Stored: a pseudonym, not the user id; nothing else about the sender.
        [(sender, *_)] = await bucket_rows(database)
        assert isinstance(sender, str) and len(sender) == 16 and str(flooder) not in sender

        for url in urls:
            update = emulator.send_message("article 33", user_id=other, queue=False)
            assert await emulator.post_webhook(url, update, SECRET) == 200
        await emulator.wait_for(
            "sendMessage", count=2, timeout=15, predicate=lambda c: c.params["chat_id"] == other
        )
        assert all("Article 33" in t for t in texts_to(other))
        assert texts_to(flooder) == to_flooder
        output = await a.output() + await b.output()
        assert "Traceback" not in output and "shared_flood.store_unavailable" not in output


# -- the database guard ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_stores_with_skewed_clocks_share_one_bucket_and_one_notice(
    database: PostgresUrl,
) -> None:
    """Two pools (two processes) whose own clocks are hours apart and stand still: the
    database's clock is the only one that counts."""
    per_minute = 5
    async with Database(database) as first, Database(database) as second:
        guards = [
            guard(first, per_minute, SkewedClock(0.0)),
            guard(second, per_minute, SkewedClock(-7200.0)),
        ]
        verdicts: list[Verdict] = []
        for n in range(3 * per_minute):
            verdicts.append(await guards[n % 2].check(SENDER))
        assert verdicts == [True] * per_minute + [False] + [None] * (2 * per_minute - 1)
        # Each has seen the sender over the limit, without asking the database again.
        assert not guards[0].has_tokens(SENDER) and not guards[1].has_tokens(SENDER)
        assert await guards[0].check("telegram:other") is True

        rows = await bucket_rows(database)
        assert sorted(str(r[0]) for r in rows) == sorted(
            guards[0].pseudonym(s) for s in (SENDER, "telegram:other")
        )
        assert all("4242" not in str(r[0]) and "other" not in str(r[0]) for r in rows)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_the_bucket_refills_on_the_database_clock(database: PostgresUrl) -> None:
    """120 a minute: a token every half second, while this process's clock stands still."""
    per_minute = 120
    async with Database(database) as db:
        limit = guard(db, per_minute, FakeClock())
        spent = 0
        while (verdict := await limit.check(SENDER)) is True:
            spent += 1
            assert spent <= 10 * per_minute, "the bucket never ran dry"
        assert verdict is False and spent >= per_minute

        async def refilled() -> bool:
            return await limit.check(SENDER) is True

        started = time.monotonic()
        await eventually(refilled, "a token to come back", timeout=10)
        assert time.monotonic() - started < 5

        [(tokens, updated_at, full_at, verdict, now)] = await query(
            database,
            "SELECT tokens, updated_at, full_at, verdict, "
            "extract(epoch FROM clock_timestamp())::double precision FROM flood_buckets",
        )
        assert verdict == 1 and 0 <= tokens < 1
        assert full_at - updated_at == pytest.approx((per_minute - tokens) / 2.0)
        assert abs(now - updated_at) < 5 and abs(now - time.time()) < 5


@pytest.mark.parametrize("backend", ["postgres"])
async def test_full_buckets_are_deleted_once_a_minute_by_the_processes_that_check(
    database: PostgresUrl,
) -> None:
    """A sender whose bucket is full again is as good as new: its row goes at the next purge,
    which a process checking senders runs once a minute (by its own clock, here a fake one)."""
    clock = FakeClock()
    async with Database(database) as db:
        fast = guard(db, 6000)  # one token back in 10 ms
        slow = guard(db, 1, clock)  # one token back in a minute
        assert await fast.check("telegram:fast") is True
        assert await slow.check("telegram:slow") is True
        assert len(await bucket_rows(database)) == 2

        async def fast_is_full() -> bool:
            rows = await query(
                database,
                "SELECT COUNT(*) FROM flood_buckets "
                "WHERE full_at <= extract(epoch FROM clock_timestamp())",
            )
            return rows == [(1,)]

        await eventually(fast_is_full, "the fast bucket to be full again")
        assert await slow.check("telegram:second") is True
        assert len(await bucket_rows(database)) == 3, "purged again within the minute"
        clock.advance(PURGE_EVERY)
        assert await slow.check("telegram:third") is True
        senders = [sender for sender, *_ in await bucket_rows(database)]
        assert sorted(senders) == sorted(
            slow.pseudonym(f"telegram:{name}") for name in ("slow", "second", "third")
        )
        assert await Repository(db).purge_full_flood_buckets() == 0


async def test_a_store_outage_is_decided_in_memory_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its own server, stopped between two messages: the checks carry on from what the
    database last said, without a traceback or a wait, and share again once it is back."""
    caplog.set_level(logging.INFO, logger="bot.flood")

    def logged(event: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == event]

    with running(binaries_or_skip()) as server:
        async with server.database() as url, Database(url) as db:
            limit = guard(db, 3, retry_after=0.05)
            assert [await limit.check(SENDER), await limit.check(SENDER)] == [True, True]
            await asyncio.to_thread(server.stop)
            during = [await asyncio.wait_for(limit.check(SENDER), 5) for _ in range(4)]
            assert during == [True, False, None, None]
            [warning] = logged("shared_flood.store_unavailable")
            assert warning.levelno == logging.WARNING and warning.exc_info is None

            await asyncio.to_thread(server.start)

            async def shared_again() -> bool:
                await limit.check("telegram:after")
                return bool(logged("shared_flood.store_available"))

            await eventually(shared_again, "the checks to reach the database again")
            assert [str(r[0]) for r in await bucket_rows(url)] == sorted(
                limit.pseudonym(s) for s in (SENDER, "telegram:after")
            )
    assert len(logged("shared_flood.store_unavailable")) == 1
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_stuck_database_does_not_hold_up_the_check(
    database: PostgresUrl, caplog: pytest.LogCaptureFixture
) -> None:
    """Another session holds the sender's row locked: the check gives up after its timeout,
    decides in memory, and asks the database again once the row is free."""
    caplog.set_level(logging.INFO, logger="bot.flood")
    async with Database(database) as db:
        limit = guard(db, 10, timeout=0.2, retry_after=0.05)
        assert await limit.check(SENDER) is True
        conn = await asyncpg.connect(database.dsn)
        try:
            locked = conn.transaction()
            await locked.start()
            await conn.execute(
                "SELECT * FROM flood_buckets WHERE sender = $1 FOR UPDATE",
                limit.pseudonym(SENDER),
            )
            started = time.monotonic()
            assert await asyncio.wait_for(limit.check(SENDER), 5) is True
            assert time.monotonic() - started < 2
            await locked.rollback()
        finally:
            await conn.close()

        async def shared_again() -> bool:
            await limit.check(SENDER)
            return any(r.getMessage() == "shared_flood.store_available" for r in caplog.records)

        await eventually(shared_again, "the check to reach the database again")
    warnings = [r for r in caplog.records if r.getMessage() == "shared_flood.store_unavailable"]
    assert len(warnings) == 1 and warnings[0].exc_info is None


# -- which guard, and the key ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_sqlite_keeps_the_in_memory_guard_and_postgresql_shares(
    backend: str, database: Path | PostgresUrl, library: Library
) -> None:
    settings = Settings(database=database, questions_per_minute=2)
    async with Database(database) as db:
        repository = Repository(db)
        flood = build_flood(settings, db, repository, SystemClock())
        expected = LocalFloodLimit if backend == "sqlite" else SharedFloodLimit
        assert type(flood) is expected
        core = Core(library, settings, repository, flood=flood)
        assert core.flood is flood
        assert [await flood.check(SENDER) for _ in range(4)] == [True, True, False, None]


def test_every_process_of_a_bot_names_a_sender_alike_with_a_key_not_in_the_database() -> None:
    """The key comes from BOT_PSEUDONYM_KEY, else from the bot's token, which every process
    serving the bot has and the database never holds: same bot, same key; another bot (or a
    changed token), another key."""
    telegram = TelegramSettings(token=SecretStr(TELEGRAM_TOKEN))
    one, other = Settings(telegram=telegram), Settings(telegram=telegram)
    assert flood_key(one) == flood_key(other)
    assert TELEGRAM_TOKEN.encode() not in flood_key(one)
    rotated = TelegramSettings(token=SecretStr(TELEGRAM_TOKEN + "x"))
    assert flood_key(Settings(telegram=rotated)) != flood_key(one)
    configured = Settings(telegram=telegram, pseudonym_key=SecretStr("operator-secret"))
    assert flood_key(configured) == b"operator-secret"


# -- migration 0006 ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migration_0006_applies_on_both_dialects(
    backend: str, database: Path | PostgresUrl
) -> None:
    async with upgraded(database, 5, named="0006_flood_buckets.sql") as db:
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

"""The store: migrations (including upgrading a populated older database), outbox, backup.

Tests taking the ``db`` fixture run against both stores, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path

import aiosqlite
import pytest
from support.migrations import upgraded
from support.transports import recording_worker
from test_alerts import eventually

from bot.alerts.notices import Correction
from bot.config import Settings
from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event, Localized
from bot.library import Library
from bot.store.backup import backup, restore
from bot.store.db import Database
from bot.store.migrate import MIGRATIONS, migration_files
from bot.store.repositories import OutboxKind, OutboxRow, Repository
from bot.store.url import PostgresUrl

CHAT = ChatRef(platform=Platform.TELEGRAM, chat_id="42")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def event(event_id: str = "ev-test", topics: list[str] | None = None) -> Event:
    return Event(
        id=event_id,
        date="2026-11",
        precision="month",
        title=Localized(en="A test event"),
        summary=Localized(en="Something happened."),
        topics=topics or ["history"],
        sources=["stary-27-years"],
    )


async def test_upgrades_a_populated_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    first = (MIGRATIONS / "0001_initial.sql").read_text(encoding="utf-8")
    async with aiosqlite.connect(path) as conn:
        await conn.executescript(f"BEGIN; {first} PRAGMA user_version = 1; COMMIT;")
        await conn.execute("INSERT INTO chat_settings VALUES ('telegram', '42', 'be', 0)")
        await conn.commit()
    async with Database(path) as db:
        repository = Repository(db)
        assert await repository.chat_language(CHAT) == "be"
        async with db.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        assert row is not None and row[0] == len(migration_files())
        await repository.subscribe(CHAT, ["history"], 1.0)
        assert await repository.subscriptions(CHAT) == ["history"]


async def test_migration_0007_keeps_old_subscriptions_and_learns_their_language(
    database: Path | PostgresUrl,
) -> None:
    """A subscription from before 0007 has no language (alerts use the default); subscribing
    again in a language gives every row of that chat that language, and moving the chat keeps it."""
    old_row = (
        "INSERT INTO subscriptions (platform, chat_id, topic, created_at) "
        "VALUES ('telegram', '42', 'history', 0)"
    )
    async with upgraded(
        database, 6, named="0007_subscription_language.sql", rows=(old_row,)
    ) as db:
        repository = Repository(db)
        assert await repository.subscriptions(CHAT) == ["history"]
        assert await repository.subscription_language(CHAT) is None
        await repository.subscribe(CHAT, ["prisoners"], 1.0, "ru")
        assert await repository.subscriptions(CHAT) == ["history", "prisoners"]
        assert await repository.subscription_language(CHAT) == "ru"
        await repository.move_chat(CHAT, "43")
        moved = ChatRef(platform=Platform.TELEGRAM, chat_id="43")
        assert await repository.subscription_language(moved) == "ru"
        assert await repository.subscription_language(CHAT) is None


async def test_migration_0008_keeps_the_outbox_and_lets_a_row_be_dropped(
    database: Path | PostgresUrl,
) -> None:
    old_row = (
        "INSERT INTO outbox (kind, event_id, payload, platform, chat_id, status, updated_at) "
        "VALUES ('correction', 'correction:strike-1995:1', '{}', 'telegram', '42', 'failed', 5)"
    )
    async with upgraded(database, 7, named="0008_outbox_dropped.sql", rows=(old_row,)) as db:
        repository = Repository(db)
        assert (await repository.outbox_counts())["failed"] == 1
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO outbox (kind, event_id, platform, chat_id, status, updated_at) "
                "VALUES ('correction', 'correction:x:3', 'telegram', '42', 'dropped', 6)"
            )
        assert (await repository.outbox_counts())["dropped"] == 1
        with pytest.raises(Exception, match=r"(?i)check"):
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO outbox (event_id, platform, chat_id, status, updated_at) "
                    "VALUES ('e', 'telegram', '42', 'lost', 6)"
                )


async def test_two_changes_of_a_fact_before_delivery_reach_a_chat_as_one_notice(
    db: Database, library: Library, settings: Settings
) -> None:
    """Notices are worded when sent, with the fact as it stands then: the earlier of two queued
    for one fact and one chat would say the same again, so it is dropped (and counted so). A
    notice on another fact, whose id starts with the first one's, is sent."""
    repository = Repository(db)
    await repository.subscribe(CHAT, ["history"], 0)
    day = date(2026, 11, 28)
    queued = [("strike-1995", 1), ("strike-1995-suppressed", 2), ("strike-1995", 3)]
    async with db.transaction() as conn:
        for fact_id, audit_id in queued:
            notice = Correction(fact_id=fact_id, retracted=False, day=day, reason=str(audit_id))
            await Repository.queue_correction_in(
                conn, f"correction:{fact_id}:{audit_id}", ["history"], notice.model_dump_json(), 1
            )
    worker, telegram = recording_worker(repository, library, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))

    async def delivered() -> bool:
        counts = await repository.outbox_counts()
        return counts["pending"] + counts["sending"] == 0

    try:
        await eventually(delivered, "the three notices to be sent or dropped")
    finally:
        stop.set()
        await running
    reasons = sorted(
        line.split("Reason: ")[1]
        for _, reply in telegram.sent
        for line in reply.plain_text().splitlines()
        if line.startswith("Reason: ")
    )
    assert reasons == ["2", "3"]
    counts = await repository.outbox_counts()
    assert (counts["sent"], counts["dropped"]) == (2, 1)


class _FailsOnce(Repository):
    """A store whose first claim fails with an error nobody foresaw."""

    failed = False

    async def claim_due(
        self, now: float, platforms: list[Platform], limit: int
    ) -> list[OutboxRow]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("unforeseen")
        return await super().claim_due(now, platforms, limit)


async def test_an_unforeseen_error_does_not_stop_the_alerts(
    db: Database, library: Library, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    repository = _FailsOnce(db)
    await repository.subscribe(CHAT, ["history"], 0)
    assert await repository.publish_event(event(), 1.0) == 1
    worker, telegram = recording_worker(repository, library, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))

    async def delivered() -> bool:
        return len(telegram.sent) == 1

    try:
        await eventually(delivered, "the alert after the failed step")
    finally:
        stop.set()
        await running
    assert repository.failed
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["alerts.step_failed"]


async def test_publish_is_idempotent_and_fans_out_to_subscribers(db: Database) -> None:
    repository = Repository(db)
    for chat_id in ("1", "2", "3"):
        await repository.subscribe(
            ChatRef(platform=Platform.TELEGRAM, chat_id=chat_id), ["history"], 0
        )
    await repository.subscribe(ChatRef(platform=Platform.MATRIX, chat_id="!r:x"), ["prisoners"], 0)
    assert await repository.publish_event(event(), 10.0) == 3
    assert await repository.publish_event(event(), 11.0) is None
    assert (await repository.outbox_counts())["pending"] == 3


async def test_each_row_is_claimed_once_even_by_concurrent_claimers(db: Database) -> None:
    repository = Repository(db)
    for n in range(50):
        await repository.subscribe(
            ChatRef(platform=Platform.TELEGRAM, chat_id=str(n)), ["history"], 0
        )
    await repository.publish_event(event(), 0)
    batches = await asyncio.gather(
        *(repository.claim_due(1.0, [Platform.TELEGRAM], 7) for _ in range(10))
    )
    claimed = [row.id for batch in batches for row in batch]
    assert len(claimed) == len(set(claimed)) == 50


async def test_interrupted_claims_are_requeued(db: Database) -> None:
    repository = Repository(db)
    await repository.subscribe(CHAT, ["history"], 0)
    await repository.publish_event(event(), 0)
    [row] = await repository.claim_due(1.0, [Platform.TELEGRAM], 10)
    assert await repository.claim_due(1.0, [Platform.TELEGRAM], 10) == []
    assert await repository.requeue_interrupted() == 1
    [again] = await repository.claim_due(1.0, [Platform.TELEGRAM], 10)
    assert again.id == row.id


async def test_gone_chat_loses_subscriptions_and_pending_alerts(db: Database) -> None:
    repository = Repository(db)
    await repository.subscribe(CHAT, ["history", "prisoners"], 0)
    await repository.publish_event(event("ev-a"), 0)
    await repository.publish_event(event("ev-b", ["prisoners"]), 0)
    [row] = await repository.claim_due(1.0, [Platform.TELEGRAM], 1)
    await repository.mark_gone(row, 2.0)
    assert await repository.subscriptions(CHAT) == []
    counts = await repository.outbox_counts()
    assert counts["gone"] == 2 and counts["pending"] == 0


async def test_moved_chat_keeps_subscriptions(db: Database) -> None:
    repository = Repository(db)
    await repository.subscribe(CHAT, ["history"], 0)
    await repository.move_chat(CHAT, "-10042")
    assert await repository.subscriptions(CHAT) == []
    assert await repository.subscriptions(
        ChatRef(platform=Platform.TELEGRAM, chat_id="-10042")
    ) == ["history"]


async def test_backup_and_restore(tmp_path: Path) -> None:
    live = tmp_path / "live.sqlite3"
    async with Database(live) as db:
        await Repository(db).subscribe(CHAT, ["history"], 0)
        await backup(live, tmp_path / "backup.sqlite3")
        await Repository(db).forget_chat(CHAT)
    await restore(live, tmp_path / "backup.sqlite3")
    async with Database(live) as db:
        assert await Repository(db).subscriptions(CHAT) == ["history"]


async def test_forget_chat_deletes_everything_tied_to_it(db: Database) -> None:
    repository = Repository(db)
    await repository.subscribe(CHAT, ["history"], 0)
    await repository.set_chat_language(CHAT, "ru", 0)
    await repository.publish_event(event(), 0)
    await repository.wait_for_answer(CHAT, "who chairs the bkdp", "en", 0, 86400)
    await repository.set_corrections(CHAT, False, 0)
    assert await repository.forget_chat(CHAT) == {
        "subscriptions": 1,
        "alerts": 1,
        "language": 1,
        "waiting": 1,
    }
    assert await repository.chat_language(CHAT) is None
    assert await repository.waiting_count(CHAT, 0) == 0
    assert await repository.wants_corrections(CHAT)


async def test_every_statement_runs_on_this_store(db: Database) -> None:
    """Each repository method once, with the results both stores must agree on."""
    repository = Repository(db)
    other = ChatRef(platform=Platform.TELEGRAM, chat_id="43")
    assert await repository.chat_language(CHAT) is None
    await repository.set_chat_language(CHAT, "ru", 1)
    await repository.set_chat_language(CHAT, "be", 2)
    assert await repository.chat_language(CHAT) == "be"

    day = 1_780_000_000.0
    await repository.count_question(day, "fact-a", None)
    await repository.count_question(day, "fact-a", None)
    await repository.count_question(day, None, "who is x")
    await repository.count_question(day, None, "who is x")
    assert await repository.question_days("2000-01-01") == [("2026-05-28", 2, 2)]
    assert await repository.top_entries("2000-01-01") == [("fact-a", 2)]
    assert await repository.unanswered("2000-01-01") == [("who is x", 2)]
    assert await repository.expire_declined("2100-01-01") == 1

    # Telegram update ids past 2**31 (BIGINT on PostgreSQL).
    assert await repository.take_update(3_000_000_001, 10) is True
    assert await repository.take_update(3_000_000_001, 11) is False
    assert await repository.take_update(3_000_000_002, 20) is True
    assert await repository.purge_processed_updates(15) == 1
    assert await repository.take_update(3_000_000_001, 30) is True

    await repository.set_value("k", "1")
    await repository.set_value("k", "2")
    assert await repository.get_value("k") == "2"

    await repository.subscribe(CHAT, ["history", "prisoners"], 0)
    await repository.subscribe(CHAT, ["history"], 0)
    await repository.subscribe(other, ["history"], 0)
    assert await repository.count_subscribers(["history", "prisoners"]) == 2
    assert await repository.count_subscribers([]) == 0
    assert await repository.subscribers_per_topic() == {"history": 2, "prisoners": 1}
    assert await repository.unsubscribe(CHAT, ["prisoners", "nothing"]) == 1

    assert await repository.publish_event(event(), 5) == 2
    assert await repository.published_events_since() == [(5, event())]
    assert await repository.published_events_since(5) == [(5, event())]
    assert await repository.published_events_since(6) == []
    assert (await repository.published_event("ev-test")) == event()
    assert await repository.published_event("none") is None
    assert await repository.next_due([Platform.TELEGRAM]) == 0.0
    assert await repository.next_due([]) is None
    first, second = await repository.claim_due(1.0, [Platform.TELEGRAM], 10)
    await repository.mark_retry(first, 2.0, 60.5, "flood", count=False)
    assert await repository.next_due([Platform.TELEGRAM]) == 60.5
    await repository.mark_sent(second, 3.0)
    [again] = await repository.claim_due(61.0, [Platform.TELEGRAM], 10)
    assert again.attempts == 0
    await repository.mark_failed(again, 62.0, "boom")
    assert await repository.outbox_counts() == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "gone": 0,
        "failed": 1,
        "dropped": 0,
    }
    assert sorted(await repository.outbox_by_event()) == [
        ("alert", "ev-test", "failed", 1),
        ("alert", "ev-test", "sent", 1),
    ]
    assert await repository.purge_delivered(100.0) == 2

    # A moved chat whose new id already has a row of its own for the event: that row stays.
    await repository.publish_event(event("ev-moved"), 5)
    await repository.subscribe(ChatRef(platform=Platform.TELEGRAM, chat_id="-100"), ["x"], 0)
    await repository.move_chat(other, "43-new")
    await repository.move_chat(CHAT, "43-new")
    rows = await db.fetchall(
        "SELECT chat_id, status FROM outbox WHERE event_id = ? ORDER BY chat_id, status",
        ("ev-moved",),
    )
    assert [tuple(r) for r in rows] == [("42", "gone"), ("43-new", "pending")]

    fact = event("entry-one")
    audit_id = await _save(db, fact, reason="typo")
    assert await _save(db, fact) == audit_id + 1
    assert await repository.runtime_entries() == [("event", fact.model_dump_json())] * 1
    [latest, oldest] = await repository.audit("entry-one")
    assert (latest["reason"], oldest["reason"]) == (None, "typo")
    assert len(await repository.audit(None, limit=1)) == 1
    await repository.count_refused_admin(day)
    await repository.count_refused_admin(day)
    assert await repository.refused_admin_total() == 2

    await repository.wait_for_answer(CHAT, "q?", "en", 10, 100)
    await repository.wait_for_answer(CHAT, "q?", "ru", 11, 200)
    await repository.wait_for_answer(other, "q?", "en", 10, 20)
    assert await repository.waiting_count(CHAT, 50) == 1
    assert await repository.waiting_by_wording(15) == [("q?", 2)]
    waiting = await repository.waiting_questions(50)
    assert [(w.chat_id, w.language) for w in waiting] == [("42", "ru")]
    assert await repository.answer_found(waiting[0], '{"a": 1}', 60)
    assert not await repository.answer_found(waiting[0], '{"a": 1}', 60)
    assert await repository.expire_waiting(50) == 1

    async with db.transaction() as conn:
        await Repository.queue_rematch_in(conn, "fact-b", 1)
        await Repository.queue_rematch_in(conn, "fact-b", 2)
        await Repository.queue_rematch_in(conn, "fact-a", 3)
    assert await repository.rematch_queue() == ["fact-b", "fact-a"]
    await repository.rematched("fact-b")
    assert await repository.rematch_queue() == ["fact-a"]

    await repository.forget_chat(ChatRef(platform=Platform.TELEGRAM, chat_id="43-new"))
    await repository.subscribe(CHAT, ["history"], 0)
    await repository.subscribe(other, ["history"], 0)
    await repository.set_corrections(CHAT, False, 0)
    await repository.set_corrections(CHAT, False, 0)
    assert not await repository.wants_corrections(CHAT)
    async with db.transaction() as conn:
        queued = await Repository.queue_correction_in(conn, "correction:f:1", ["history"], "{}", 9)
    assert queued == 1  # CHAT opted out
    async with db.transaction() as conn:
        await Repository.queue_correction_in(conn, "correction:f:2", ["history"], "{}", 9)
        await Repository.queue_correction_in(conn, "correction:f-2:3", ["history"], "{}", 9)
    claimed = await repository.claim_due(10.0, [Platform.TELEGRAM], 10)
    first, later, unrelated = [row for row in claimed if row.kind is OutboxKind.CORRECTION]
    assert first.event_id == "correction:f:1" and await repository.overtaken(first)
    assert not await repository.overtaken(later) and not await repository.overtaken(unrelated)
    await repository.mark_dropped(first, 11.0, "overtaken")
    assert (await repository.outbox_counts())["dropped"] == 1
    for row in claimed:
        if row is not first:
            await repository.mark_sent(row, 12.0)
    await repository.set_corrections(CHAT, True, 0)
    assert await repository.wants_corrections(CHAT)
    assert await repository.requeue_interrupted() == 0


async def _save(db: Database, entry: Event, reason: str | None = None) -> int:
    async with db.transaction() as conn:
        return await Repository.save_entry_in(
            conn,
            kind="event",
            entry=entry,
            before=None,
            actor="admin",
            action="add",
            now=7,
            reason=reason,
        )

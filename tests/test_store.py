"""The store: migrations (including upgrading a populated older database), outbox, backup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event, Localized
from bot.store.backup import backup, restore
from bot.store.db import Database
from bot.store.migrate import MIGRATIONS, migration_files
from bot.store.repositories import Repository

CHAT = ChatRef(platform=Platform.TELEGRAM, chat_id="42")


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

"""What is stored and logged: a known token, user and question are planted, then searched for."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
from pathlib import Path

from conftest import TELEGRAM_TOKEN
from support.telegram_emulator import TelegramEmulator
from test_telegram import last_text, start_bot

from bot import logs
from bot.domain import ChatRef, Platform
from bot.knowledge.export import to_single_yaml
from bot.knowledge.models import KnowledgeBase
from bot.store.db import Database

USER_ID = 987654321
USERNAME = "known_user"
FIRST_NAME = "Knownname"
QUESTION = "zebracrossing unicornium question"


async def test_planted_identity_and_question_are_found_only_where_allowed(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database, tmp_path: Path
) -> None:
    captured = io.StringIO()
    logs.configure("DEBUG", "json", secrets=[TELEGRAM_TOKEN])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(captured)
    running, stop, task = await start_bot(emulator, kb, db)
    who = {"user_id": USER_ID, "username": USERNAME, "first_name": FIRST_NAME}
    try:
        sent = 0

        async def say(text: str) -> str:
            nonlocal sent
            emulator.send_message(text, **who)  # type: ignore[arg-type]
            sent += 1
            return await last_text(emulator, count=sent)

        assert "I don't have a sourced answer" in await say(QUESTION)
        assert "Subscribed to" in await say("/subscribe all")
        await say("/language ru")
        chat = ChatRef(platform=Platform.TELEGRAM, chat_id=str(USER_ID))
        assert await running.repository.subscriptions(chat)
        await say("/forgetme")
        emulator.press_button("/forgetme confirm", user_id=USER_ID)
        done = await last_text(emulator, count=sent + 1)
        assert "Удалено" in done or "Deleted" in done
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    await db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(
        p.read_bytes() for p in db.path.parent.glob(db.path.name + "*") if p.is_file()
    )
    exported = to_single_yaml(running.core.library.snapshot()).encode()
    log_text = captured.getvalue().encode()
    for secret in (TELEGRAM_TOKEN, str(USER_ID), USERNAME, FIRST_NAME):
        for place, data in (("database", stored), ("logs", log_text), ("export", exported)):
            assert secret.encode() not in data, f"{secret!r} found in the {place}"
    assert QUESTION.encode() not in log_text and QUESTION.encode() not in exported

    with sqlite3.connect(db.path) as conn:
        declined = conn.execute("SELECT normalized FROM declined_questions").fetchall()
        rest = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("subscriptions", "chat_settings", "outbox")
        }
    assert declined == [(QUESTION,)]
    assert rest == {"subscriptions": 0, "chat_settings": 0, "outbox": 0}

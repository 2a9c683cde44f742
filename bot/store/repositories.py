"""All SQL of the bot: chat settings, aggregate counts, key-value state."""

from __future__ import annotations

from bot.clock import day_of
from bot.domain import ChatRef
from bot.store.db import Database

MAX_DECLINED_TEXT = 200


class Repository:
    """Typed access to the store; every method is one short statement or transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def chat_language(self, chat: ChatRef) -> str | None:
        async with self.db.conn.execute(
            "SELECT language FROM chat_settings WHERE platform = ? AND chat_id = ?",
            (chat.platform.value, chat.chat_id),
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_chat_language(self, chat: ChatRef, language: str, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO chat_settings (platform, chat_id, language, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform, chat_id) DO UPDATE SET language = excluded.language, "
                "updated_at = excluded.updated_at",
                (chat.platform.value, chat.chat_id, language, int(now)),
            )

    async def count_question(self, now: float, entry_id: str | None, declined_text: str | None) -> None:
        """Count one question: answered (by entry id) or declined (by normalised text only)."""
        day = day_of(now)
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO question_counts (day, answered, count) VALUES (?, ?, 1) "
                "ON CONFLICT (day, answered) DO UPDATE SET count = count + 1",
                (day, 1 if entry_id else 0),
            )
            if entry_id:
                await conn.execute(
                    "INSERT INTO answer_counts (day, entry_id, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (day, entry_id) DO UPDATE SET count = count + 1",
                    (day, entry_id),
                )
            elif declined_text:
                await conn.execute(
                    "INSERT INTO declined_questions (day, normalized, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (day, normalized) DO UPDATE SET count = count + 1",
                    (day, declined_text[:MAX_DECLINED_TEXT]),
                )

    async def get_value(self, key: str) -> str | None:
        async with self.db.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_value(self, key: str, value: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

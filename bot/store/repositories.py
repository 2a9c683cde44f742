"""All SQL of the bot: chat settings, aggregate counts, key-value state."""

from __future__ import annotations

from enum import StrEnum

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field

from bot.clock import day_of
from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event
from bot.store.db import Database


class OutboxKind(StrEnum):
    """What an outbox row delivers."""

    ALERT = "alert"
    ANSWER = "answer"
    CORRECTION = "correction"


class OutboxRow(BaseModel):
    """One message to deliver to a chat: an event's alert, an answer found or a correction."""

    model_config = ConfigDict(frozen=True)

    id: int
    event_id: str = Field(description="the event, or answer:<id> / correction:<fact>:<audit id>")
    platform: Platform
    chat_id: str
    attempts: int
    kind: OutboxKind = OutboxKind.ALERT
    payload: str | None = None

    @property
    def chat(self) -> ChatRef:
        return ChatRef(platform=self.platform, chat_id=self.chat_id)


class WaitingQuestion(BaseModel):
    """A question a chat asked to be told about once it has a sourced answer."""

    model_config = ConfigDict(frozen=True)

    id: int
    platform: Platform
    chat_id: str
    question: str
    language: str

    @property
    def chat(self) -> ChatRef:
        return ChatRef(platform=self.platform, chat_id=self.chat_id)


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

    async def count_question(
        self, now: float, entry_id: str | None, declined_text: str | None
    ) -> None:
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

    # -- subscriptions -------------------------------------------------------------------------

    async def subscriptions(self, chat: ChatRef) -> list[str]:
        async with self.db.conn.execute(
            "SELECT topic FROM subscriptions WHERE platform = ? AND chat_id = ? ORDER BY topic",
            (chat.platform.value, chat.chat_id),
        ) as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]

    async def subscribe(self, chat: ChatRef, topics: list[str], now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO subscriptions (platform, chat_id, topic, created_at) "
                "VALUES (?, ?, ?, ?)",
                [(chat.platform.value, chat.chat_id, topic, int(now)) for topic in topics],
            )

    async def unsubscribe(self, chat: ChatRef, topics: list[str] | None = None) -> int:
        """Remove some (or, with None, all) of a chat's subscriptions; returns how many."""
        async with self.db.transaction() as conn:
            if topics is None:
                cursor = await conn.execute(
                    "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?",
                    (chat.platform.value, chat.chat_id),
                )
            else:
                cursor = await conn.executemany(
                    "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ? AND topic = ?",
                    [(chat.platform.value, chat.chat_id, topic) for topic in topics],
                )
            return cursor.rowcount

    async def count_subscribers(self, topics: list[str]) -> int:
        """Distinct chats following any of ``topics``."""
        marks = ",".join("?" * len(topics)) or "NULL"
        async with self.db.conn.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT platform, chat_id FROM subscriptions "
            f"WHERE topic IN ({marks}))",
            topics,
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def subscribers_per_topic(self) -> dict[str, int]:
        async with self.db.conn.execute(
            "SELECT topic, COUNT(*) FROM subscriptions GROUP BY topic ORDER BY topic"
        ) as cursor:
            return {str(r[0]): int(r[1]) for r in await cursor.fetchall()}

    async def move_chat(self, old: ChatRef, new_chat_id: str) -> None:
        """A chat got a new id (group -> supergroup): its subscriptions and pending alerts follow."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO subscriptions (platform, chat_id, topic, created_at) "
                "SELECT platform, ?, topic, created_at FROM subscriptions WHERE platform = ? AND chat_id = ?",
                (new_chat_id, old.platform.value, old.chat_id),
            )
            await conn.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?",
                (old.platform.value, old.chat_id),
            )
            await conn.execute(
                "UPDATE OR IGNORE outbox SET chat_id = ?, status = 'pending', next_attempt_at = 0 "
                "WHERE platform = ? AND chat_id = ? AND status IN ('pending', 'sending')",
                (new_chat_id, old.platform.value, old.chat_id),
            )
            # Rows the new chat already has its own row for could not move: they end here, or
            # they would stay claimed ('sending') and be retried against the old id at restarts.
            await conn.execute(
                "UPDATE outbox SET status = 'gone' "
                "WHERE platform = ? AND chat_id = ? AND status IN ('pending', 'sending')",
                (old.platform.value, old.chat_id),
            )

    # -- events and the outbox -----------------------------------------------------------------

    async def publish_event(self, event: Event, now: float) -> int | None:
        """Record ``event`` and queue one alert per subscribed chat, in one transaction.

        Returns the number of chats queued, or None if the event was published before
        (publishing is idempotent by event id).
        """
        async with self.db.transaction() as conn:
            return await self.publish_event_in(conn, event, now)

    @staticmethod
    async def publish_event_in(conn: aiosqlite.Connection, event: Event, now: float) -> int | None:
        """``publish_event`` inside the caller's transaction."""
        topics = list(event.topics)
        marks = ",".join("?" * len(topics))
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO published_events (event_id, payload, published_at, recipients) "
            "VALUES (?, ?, ?, 0)",
            (event.id, event.model_dump_json(), int(now)),
        )
        if cursor.rowcount == 0:
            return None
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO outbox (event_id, platform, chat_id, updated_at) "
            f"SELECT DISTINCT ?, platform, chat_id, ? FROM subscriptions WHERE topic IN ({marks})",
            (event.id, int(now), *topics),
        )
        recipients = cursor.rowcount
        await conn.execute(
            "UPDATE published_events SET recipients = ? WHERE event_id = ?",
            (recipients, event.id),
        )
        return recipients

    async def published_events(self) -> list[Event]:
        async with self.db.conn.execute(
            "SELECT payload FROM published_events ORDER BY published_at, event_id"
        ) as cursor:
            return [Event.model_validate_json(row[0]) for row in await cursor.fetchall()]

    async def published_event(self, event_id: str) -> Event | None:
        async with self.db.conn.execute(
            "SELECT payload FROM published_events WHERE event_id = ?", (event_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return Event.model_validate_json(row[0]) if row else None

    async def requeue_interrupted(self) -> int:
        """Alerts claimed by a process that died go back to the queue (at-least-once)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET status = 'pending' WHERE status = 'sending'"
            )
            return cursor.rowcount

    async def claim_due(
        self, now: float, platforms: list[Platform], limit: int
    ) -> list[OutboxRow]:
        """Mark up to ``limit`` due alerts as being sent and return them (one claimer at a time)."""
        if not platforms:
            return []
        marks = ",".join("?" * len(platforms))
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT id, event_id, platform, chat_id, attempts, kind, payload FROM outbox "
                f"WHERE status = 'pending' AND next_attempt_at <= ? AND platform IN ({marks}) "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (now, *[p.value for p in platforms], limit),
            ) as cursor:
                rows = [
                    OutboxRow(
                        id=r[0],
                        event_id=r[1],
                        platform=Platform(r[2]),
                        chat_id=r[3],
                        attempts=r[4],
                        kind=OutboxKind(r[5]),
                        payload=r[6],
                    )
                    for r in await cursor.fetchall()
                ]
            await conn.executemany(
                "UPDATE outbox SET status = 'sending', updated_at = ? WHERE id = ?",
                [(int(now), row.id) for row in rows],
            )
        return rows

    async def next_due(self, platforms: list[Platform]) -> float | None:
        """When the earliest pending alert falls due, or None if nothing is pending."""
        marks = ",".join("?" * len(platforms)) or "NULL"
        async with self.db.conn.execute(
            f"SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' AND platform IN ({marks})",
            [p.value for p in platforms],
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def mark_sent(self, row: OutboxRow, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, updated_at = ?, "
                "last_error = NULL WHERE id = ?",
                (int(now), row.id),
            )

    async def mark_retry(
        self, row: OutboxRow, now: float, at: float, error: str, *, count: bool = True
    ) -> None:
        """Back to the queue until ``at``; ``count`` is False for waits that are not failures."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = attempts + ?, next_attempt_at = ?, "
                "updated_at = ?, last_error = ? WHERE id = ?",
                (1 if count else 0, at, int(now), error[:200], row.id),
            )

    async def mark_failed(self, row: OutboxRow, now: float, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = ?, "
                "last_error = ? WHERE id = ?",
                (int(now), error[:200], row.id),
            )

    async def mark_gone(self, row: OutboxRow, now: float) -> None:
        """The chat is gone: drop its subscriptions and every alert still queued for it."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?",
                (row.platform.value, row.chat_id),
            )
            await conn.execute(
                "UPDATE outbox SET status = 'gone', updated_at = ? WHERE platform = ? AND chat_id = ? "
                "AND status IN ('pending', 'sending')",
                (int(now), row.platform.value, row.chat_id),
            )

    async def outbox_counts(self) -> dict[str, int]:
        async with self.db.conn.execute(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status"
        ) as cursor:
            counts = {str(r[0]): int(r[1]) for r in await cursor.fetchall()}
        return {s: counts.get(s, 0) for s in ("pending", "sending", "sent", "gone", "failed")}

    async def outbox_by_event(self) -> list[tuple[str, str, str, int]]:
        """(kind, event id or subject, status, rows); answers are counted together, never
        listed one by one, as each names a waiting question."""
        async with self.db.conn.execute(
            "SELECT kind, CASE kind WHEN 'answer' THEN 'answers found' ELSE event_id END AS what, "
            "status, COUNT(*) FROM outbox GROUP BY kind, what, status ORDER BY kind, what"
        ) as cursor:
            return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in await cursor.fetchall()]

    async def purge_delivered(self, before: float) -> int:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM outbox WHERE status IN ('sent', 'gone', 'failed') AND updated_at < ?",
                (int(before),),
            )
            return cursor.rowcount

    # -- curation ------------------------------------------------------------------------------

    async def runtime_entries(self) -> list[tuple[str, str]]:
        """(kind, JSON payload) of every entry added or changed at run time, oldest first."""
        async with self.db.conn.execute(
            "SELECT kind, payload FROM runtime_entries ORDER BY updated_at, rowid"
        ) as cursor:
            return [(str(r[0]), str(r[1])) for r in await cursor.fetchall()]

    @staticmethod
    async def save_entry_in(
        conn: aiosqlite.Connection,
        *,
        kind: str,
        entry: BaseModel,
        before: BaseModel | None,
        actor: str,
        action: str,
        now: float,
        reason: str | None = None,
    ) -> int:
        """Store a run-time entry and its audit row (inside the caller's transaction); returns
        the audit row's id."""
        entry_id = str(getattr(entry, "id"))  # noqa: B009 - every entry model has an id
        payload = entry.model_dump_json()
        await conn.execute(
            "INSERT INTO runtime_entries (kind, entry_id, payload, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, entry_id) DO UPDATE SET payload = excluded.payload, "
            "updated_at = excluded.updated_at",
            (kind, entry_id, payload, int(now)),
        )
        cursor = await conn.execute(
            "INSERT INTO audit (at, actor, action, kind, entry_id, before, after, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(now),
                actor,
                action,
                kind,
                entry_id,
                before.model_dump_json() if before is not None else None,
                payload,
                reason,
            ),
        )
        return int(cursor.lastrowid or 0)

    async def audit(self, entry_id: str | None, limit: int = 10) -> list[dict[str, object]]:
        query = "SELECT at, actor, action, kind, entry_id, before, after, reason FROM audit"
        params: tuple[object, ...] = ()
        if entry_id:
            query += " WHERE entry_id = ?"
            params = (entry_id,)
        async with self.db.conn.execute(
            query + " ORDER BY id DESC LIMIT ?", (*params, limit)
        ) as cursor:
            columns = ("at", "actor", "action", "kind", "entry_id", "before", "after", "reason")
            return [dict(zip(columns, row, strict=True)) for row in await cursor.fetchall()]

    async def count_refused_admin(self, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO refused_admin_attempts (day, count) VALUES (?, 1) "
                "ON CONFLICT (day) DO UPDATE SET count = count + 1",
                (day_of(now),),
            )

    async def unanswered(self, since_day: str, limit: int = 15) -> list[tuple[str, int]]:
        async with self.db.conn.execute(
            "SELECT normalized, SUM(count) AS n FROM declined_questions WHERE day >= ? "
            "GROUP BY normalized ORDER BY n DESC, normalized LIMIT ?",
            (since_day, limit),
        ) as cursor:
            return [(str(r[0]), int(r[1])) for r in await cursor.fetchall()]

    async def question_days(self, since_day: str) -> list[tuple[str, int, int]]:
        """(day, answered, declined) per day since ``since_day``."""
        async with self.db.conn.execute(
            "SELECT day, SUM(CASE WHEN answered THEN count ELSE 0 END), "
            "SUM(CASE WHEN answered THEN 0 ELSE count END) FROM question_counts "
            "WHERE day >= ? GROUP BY day ORDER BY day",
            (since_day,),
        ) as cursor:
            return [(str(r[0]), int(r[1]), int(r[2])) for r in await cursor.fetchall()]

    async def top_entries(self, since_day: str, limit: int = 5) -> list[tuple[str, int]]:
        async with self.db.conn.execute(
            "SELECT entry_id, SUM(count) AS n FROM answer_counts WHERE day >= ? "
            "GROUP BY entry_id ORDER BY n DESC, entry_id LIMIT ?",
            (since_day, limit),
        ) as cursor:
            return [(str(r[0]), int(r[1])) for r in await cursor.fetchall()]

    async def refused_admin_total(self) -> int:
        async with self.db.conn.execute(
            "SELECT COALESCE(SUM(count), 0) FROM refused_admin_attempts"
        ) as c:
            row = await c.fetchone()
        return int(row[0]) if row else 0

    async def expire_declined(self, before_day: str) -> int:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM declined_questions WHERE day < ?", (before_day,)
            )
            return cursor.rowcount

    # -- privacy -------------------------------------------------------------------------------

    async def forget_chat(self, chat: ChatRef) -> dict[str, int]:
        """Delete everything tied to a chat; returns how many rows of each kind went."""
        key = (chat.platform.value, chat.chat_id)
        async with self.db.transaction() as conn:
            subscriptions = await conn.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?", key
            )
            alerts = await conn.execute(
                "DELETE FROM outbox WHERE platform = ? AND chat_id = ?", key
            )
            language = await conn.execute(
                "DELETE FROM chat_settings WHERE platform = ? AND chat_id = ?", key
            )
            waiting = await conn.execute(
                "DELETE FROM waiting_questions WHERE platform = ? AND chat_id = ?", key
            )
            await conn.execute(
                "DELETE FROM correction_optouts WHERE platform = ? AND chat_id = ?", key
            )
        await self.db.truncate_wal()
        return {
            "subscriptions": subscriptions.rowcount,
            "alerts": alerts.rowcount,
            "language": language.rowcount,
            "waiting": waiting.rowcount,
        }

    # -- questions waiting for an answer (kept only because the person asked) -----------------

    async def wait_for_answer(
        self, chat: ChatRef, question: str, language: str, now: float, expires_at: float
    ) -> None:
        """Keep ``question`` for ``chat`` until answered or ``expires_at`` (asking again renews)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO waiting_questions "
                "(platform, chat_id, question, language, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, chat_id, question) "
                "DO UPDATE SET expires_at = excluded.expires_at, language = excluded.language",
                (chat.platform.value, chat.chat_id, question, language, int(now), int(expires_at)),
            )

    async def waiting_count(self, chat: ChatRef, now: float) -> int:
        async with self.db.conn.execute(
            "SELECT COUNT(*) FROM waiting_questions "
            "WHERE platform = ? AND chat_id = ? AND expires_at > ?",
            (chat.platform.value, chat.chat_id, int(now)),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def waiting_questions(self, now: float) -> list[WaitingQuestion]:
        """Every question still waiting (not expired), oldest first."""
        async with self.db.conn.execute(
            "SELECT id, platform, chat_id, question, language FROM waiting_questions "
            "WHERE expires_at > ? ORDER BY id",
            (int(now),),
        ) as cursor:
            return [
                WaitingQuestion(
                    id=r[0], platform=Platform(r[1]), chat_id=r[2], question=r[3], language=r[4]
                )
                for r in await cursor.fetchall()
            ]

    async def waiting_by_wording(self, now: float, limit: int = 15) -> list[tuple[str, int]]:
        """How many chats wait on each wording; never which ones."""
        async with self.db.conn.execute(
            "SELECT question, COUNT(*) AS n FROM waiting_questions WHERE expires_at > ? "
            "GROUP BY question ORDER BY n DESC, question LIMIT ?",
            (int(now), limit),
        ) as cursor:
            return [(str(r[0]), int(r[1])) for r in await cursor.fetchall()]

    async def answer_found(self, waiting: WaitingQuestion, payload: str, now: float) -> bool:
        """Queue the answer (``payload``) for the chat that waited and forget the question, in
        one transaction; False if the question is gone already (answered, forgotten, expired)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM waiting_questions WHERE id = ? AND expires_at > ?",
                (waiting.id, int(now)),
            )
            if cursor.rowcount == 0:
                return False
            await conn.execute(
                "INSERT OR IGNORE INTO outbox "
                "(kind, event_id, payload, platform, chat_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    OutboxKind.ANSWER.value,
                    f"answer:{waiting.id}",
                    payload,
                    waiting.platform.value,
                    waiting.chat_id,
                    int(now),
                ),
            )
        return True

    async def expire_waiting(self, now: float) -> int:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM waiting_questions WHERE expires_at <= ?", (int(now),)
            )
            return cursor.rowcount

    @staticmethod
    async def queue_rematch_in(conn: aiosqlite.Connection, entry_id: str, now: float) -> None:
        """Mark an entry to match the waiting questions against (inside the caller's
        transaction, so a crash before the matching only delays it)."""
        await conn.execute(
            "INSERT OR REPLACE INTO rematch_queue (entry_id, queued_at) VALUES (?, ?)",
            (entry_id, int(now)),
        )

    async def rematch_queue(self) -> list[str]:
        async with self.db.conn.execute(
            "SELECT entry_id FROM rematch_queue ORDER BY queued_at, entry_id"
        ) as cursor:
            return [str(r[0]) for r in await cursor.fetchall()]

    async def rematched(self, entry_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM rematch_queue WHERE entry_id = ?", (entry_id,))

    # -- corrections ---------------------------------------------------------------------------

    @staticmethod
    async def queue_correction_in(
        conn: aiosqlite.Connection, subject: str, topics: list[str], payload: str, now: float
    ) -> int:
        """One correction per chat following any of ``topics``, unless it opted out."""
        marks = ",".join("?" * len(topics))
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO outbox (kind, event_id, payload, platform, chat_id, updated_at) "
            "SELECT DISTINCT ?, ?, ?, s.platform, s.chat_id, ? FROM subscriptions s "
            f"WHERE s.topic IN ({marks}) AND NOT EXISTS (SELECT 1 FROM correction_optouts o "
            "WHERE o.platform = s.platform AND o.chat_id = s.chat_id)",
            (OutboxKind.CORRECTION.value, subject, payload, int(now), *topics),
        )
        return cursor.rowcount

    async def wants_corrections(self, chat: ChatRef) -> bool:
        async with self.db.conn.execute(
            "SELECT 1 FROM correction_optouts WHERE platform = ? AND chat_id = ?",
            (chat.platform.value, chat.chat_id),
        ) as cursor:
            return await cursor.fetchone() is None

    async def set_corrections(self, chat: ChatRef, wanted: bool, now: float) -> None:
        async with self.db.transaction() as conn:
            if wanted:
                await conn.execute(
                    "DELETE FROM correction_optouts WHERE platform = ? AND chat_id = ?",
                    (chat.platform.value, chat.chat_id),
                )
            else:
                await conn.execute(
                    "INSERT OR IGNORE INTO correction_optouts (platform, chat_id, created_at) "
                    "VALUES (?, ?, ?)",
                    (chat.platform.value, chat.chat_id, int(now)),
                )

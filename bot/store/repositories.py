"""All SQL of the bot: chat settings, aggregate counts, key-value state."""

from __future__ import annotations

import aiosqlite
from pydantic import BaseModel, ConfigDict

from bot.clock import day_of
from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event
from bot.store.db import Database


class OutboxRow(BaseModel):
    """One alert to deliver: an event for a chat."""

    model_config = ConfigDict(frozen=True)

    id: int
    event_id: str
    platform: Platform
    chat_id: str
    attempts: int

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
                "SELECT id, event_id, platform, chat_id, attempts FROM outbox "
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

    async def outbox_by_event(self) -> list[tuple[str, str, int]]:
        async with self.db.conn.execute(
            "SELECT event_id, status, COUNT(*) FROM outbox GROUP BY event_id, status ORDER BY event_id"
        ) as cursor:
            return [(str(r[0]), str(r[1]), int(r[2])) for r in await cursor.fetchall()]

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
    ) -> None:
        """Store a run-time entry and its audit row (inside the caller's transaction)."""
        entry_id = str(getattr(entry, "id"))  # noqa: B009 - every entry model has an id
        payload = entry.model_dump_json()
        await conn.execute(
            "INSERT INTO runtime_entries (kind, entry_id, payload, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, entry_id) DO UPDATE SET payload = excluded.payload, "
            "updated_at = excluded.updated_at",
            (kind, entry_id, payload, int(now)),
        )
        await conn.execute(
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
        await self.db.truncate_wal()
        return {
            "subscriptions": subscriptions.rowcount,
            "alerts": alerts.rowcount,
            "language": language.rowcount,
        }

"""All SQL of the bot: chat settings, aggregate counts, key-value state, alerts, curation.

Written once for both stores (SQLite and PostgreSQL): ``?`` placeholders, ``INSERT ... ON
CONFLICT``, ``RETURNING``; parameters whose type the statement does not fix are CAST. The one
exception, the flood buckets that processes share, exists on PostgreSQL only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sized
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.clock import day_of
from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event
from bot.store.db import Database, Dialect, Session

# The PostgreSQL notification channel of run-time entry changes (see bot/store/changes.py), and
# this process's mark on its own announcements, which it has applied already.
ENTRIES_CHANNEL = "bot_entries"
PROCESS_ORIGIN = uuid.uuid4().hex


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


class FloodBucket(BaseModel):
    """One sender's shared flood bucket after a check: the decision and the tokens left."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: 1: go ahead; 0: over the limit, warn (the first time); -1: over it, stay silent.
    verdict: int = Field(ge=-1, le=1)
    tokens: float


# The refill is computed from the stored row and the database's clock (not the process's, which
# may be skewed), and the decision and warn-once state change in the same statement, so two
# processes checking one sender at once are serialised by the row lock and never both spend the
# last token. ``greatest`` keeps time from running backwards when a statement that read the clock
# earlier waited for that lock.
SPEND_FLOOD_TOKEN = """
WITH args AS (
    SELECT CAST(? AS TEXT) AS sender, CAST(? AS DOUBLE PRECISION) AS capacity,
           CAST(? AS DOUBLE PRECISION) AS rate,
           CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION) AS now
)
INSERT INTO flood_buckets AS b (sender, tokens, updated_at, full_at, verdict)
SELECT sender, capacity - 1, now, now + 1 / rate, 1 FROM args
ON CONFLICT (sender) DO UPDATE SET (tokens, updated_at, full_at, verdict) = (
    SELECT s.tokens, s.now, s.now + (s.capacity - s.tokens) / s.rate, s.verdict
    FROM (
        SELECT CASE WHEN r.tokens >= 1 THEN r.tokens - 1 ELSE r.tokens END AS tokens,
               CASE WHEN r.tokens >= 1 THEN 1 WHEN b.verdict = 1 THEN 0 ELSE -1 END AS verdict,
               r.now, r.capacity, r.rate
        FROM (
            SELECT least(a.capacity, b.tokens + greatest(0, a.now - b.updated_at) * a.rate)
                       AS tokens,
                   greatest(a.now, b.updated_at) AS now, a.capacity, a.rate
            FROM args AS a
        ) AS r
    ) AS s
)
RETURNING verdict, tokens
"""


MAX_DECLINED_TEXT = 200


class Repository:
    """Typed access to the store; every method is one short statement or transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def chat_language(self, chat: ChatRef) -> str | None:
        row = await self.db.fetchone(
            "SELECT language FROM chat_settings WHERE platform = ? AND chat_id = ?",
            (chat.platform.value, chat.chat_id),
        )
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
                "ON CONFLICT (day, answered) DO UPDATE SET count = question_counts.count + 1",
                (day, 1 if entry_id else 0),
            )
            if entry_id:
                await conn.execute(
                    "INSERT INTO answer_counts (day, entry_id, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (day, entry_id) DO UPDATE SET count = answer_counts.count + 1",
                    (day, entry_id),
                )
            elif declined_text:
                await conn.execute(
                    "INSERT INTO declined_questions (day, normalized, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (day, normalized) DO UPDATE "
                    "SET count = declined_questions.count + 1",
                    (day, declined_text[:MAX_DECLINED_TEXT]),
                )

    async def get_value(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM kv WHERE key = ?", (key,))
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
        rows = await self.db.fetchall(
            "SELECT topic FROM subscriptions WHERE platform = ? AND chat_id = ? ORDER BY topic",
            (chat.platform.value, chat.chat_id),
        )
        return [str(row[0]) for row in rows]

    async def subscribe(
        self, chat: ChatRef, topics: list[str], now: float, language: str | None = None
    ) -> None:
        """Follow ``topics``; ``language`` (the one the chat subscribed in) becomes the language
        of all its alerts, unless it chose one with /language."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO subscriptions (platform, chat_id, topic, created_at, language) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (chat.platform.value, chat.chat_id, topic, int(now), language)
                    for topic in topics
                ],
            )
            if language is not None:
                await conn.execute(
                    "UPDATE subscriptions SET language = ? WHERE platform = ? AND chat_id = ?",
                    (language, chat.platform.value, chat.chat_id),
                )

    async def subscription_language(self, chat: ChatRef) -> str | None:
        """The language the chat last subscribed in, if known."""
        row = await self.db.fetchone(
            "SELECT MAX(language) FROM subscriptions WHERE platform = ? AND chat_id = ?",
            (chat.platform.value, chat.chat_id),
        )
        return str(row[0]) if row and row[0] else None

    async def unsubscribe(self, chat: ChatRef, topics: list[str] | None = None) -> int:
        """Remove some (or, with None, all) of a chat's subscriptions; returns how many."""
        query = "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?"
        params: list[object] = [chat.platform.value, chat.chat_id]
        if topics is not None:
            query += f" AND topic IN ({_marks(topics)})"
            params += topics
        async with self.db.transaction() as conn:
            return await conn.execute(query, params)

    async def count_subscribers(self, topics: list[str]) -> int:
        """Distinct chats following any of ``topics``."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM (SELECT DISTINCT platform, chat_id FROM subscriptions "
            f"WHERE topic IN ({_marks(topics)})) AS chats",
            topics,
        )
        return int(row[0]) if row else 0

    async def subscribers_per_topic(self) -> dict[str, int]:
        rows = await self.db.fetchall(
            "SELECT topic, COUNT(*) FROM subscriptions GROUP BY topic ORDER BY topic"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def move_chat(self, old: ChatRef, new_chat_id: str) -> None:
        """A chat got a new id (group -> supergroup): its subscriptions and pending alerts follow."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (platform, chat_id, topic, created_at, language) "
                "SELECT platform, CAST(? AS TEXT), topic, created_at, language FROM subscriptions "
                "WHERE platform = ? AND chat_id = ? ON CONFLICT DO NOTHING",
                (new_chat_id, old.platform.value, old.chat_id),
            )
            await conn.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?",
                (old.platform.value, old.chat_id),
            )
            # Rows the new chat has its own row for stay behind (the unique key forbids a copy).
            await conn.execute(
                "UPDATE outbox SET chat_id = ?, status = 'pending', next_attempt_at = 0 "
                "WHERE platform = ? AND chat_id = ? AND status IN ('pending', 'sending') "
                "AND NOT EXISTS (SELECT 1 FROM outbox AS taken WHERE taken.chat_id = ? "
                "AND taken.platform = outbox.platform AND taken.event_id = outbox.event_id)",
                (new_chat_id, old.platform.value, old.chat_id, new_chat_id),
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
    async def publish_event_in(conn: Session, event: Event, now: float) -> int | None:
        """``publish_event`` inside the caller's transaction."""
        topics = list(event.topics)
        inserted = await conn.execute(
            "INSERT INTO published_events (event_id, payload, published_at, recipients) "
            "VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING",
            (event.id, event.model_dump_json(), int(now)),
        )
        if inserted == 0:
            return None
        recipients = await conn.execute(
            "INSERT INTO outbox (event_id, platform, chat_id, updated_at) "
            "SELECT DISTINCT CAST(? AS TEXT), platform, chat_id, CAST(? AS BIGINT) "
            f"FROM subscriptions WHERE topic IN ({_marks(topics)}) ON CONFLICT DO NOTHING",
            (event.id, int(now), *topics),
        )
        await conn.execute(
            "UPDATE published_events SET recipients = ? WHERE event_id = ?",
            (recipients, event.id),
        )
        return recipients

    async def published_events_since(self, since: int = 0) -> list[tuple[int, Event]]:
        """(published_at, event) of the events published at or after ``since``, oldest first."""
        rows = await self.db.fetchall(
            "SELECT published_at, payload FROM published_events WHERE published_at >= ? "
            "ORDER BY published_at, event_id",
            (since,),
        )
        return [(int(row[0]), Event.model_validate_json(row[1])) for row in rows]

    async def published_event(self, event_id: str) -> Event | None:
        row = await self.db.fetchone(
            "SELECT payload FROM published_events WHERE event_id = ?", (event_id,)
        )
        return Event.model_validate_json(row[0]) if row else None

    async def requeue_interrupted(self, platforms: list[Platform] | None = None) -> int:
        """Alerts claimed by a sender that died go back to the queue (at-least-once).

        Called by the one process that sends for ``platforms`` (all if None) as it starts
        to: every row still claimed for them was claimed by a sender that is gone."""
        where = "status = 'sending'"
        params: list[object] = []
        if platforms is not None:
            where += f" AND platform IN ({_marks(platforms)})"
            params = [p.value for p in platforms]
        async with self.db.transaction() as conn:
            return await conn.execute(
                f"UPDATE outbox SET status = 'pending' WHERE {where}", params
            )

    async def claim_due(
        self, now: float, platforms: list[Platform], limit: int
    ) -> list[OutboxRow]:
        """Mark up to ``limit`` due alerts as being sent and return them; concurrent claimers
        never get the same row (SQLite: one writer at a time; PostgreSQL: rows another
        transaction has locked are skipped)."""
        if not platforms:
            return []
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect is Dialect.POSTGRES else ""
        async with self.db.transaction() as conn:
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
                for r in await conn.fetchall(
                    "SELECT id, event_id, platform, chat_id, attempts, kind, payload FROM outbox "
                    "WHERE status = 'pending' AND next_attempt_at <= ? "
                    f"AND platform IN ({_marks(platforms)}) "
                    f"ORDER BY next_attempt_at, id LIMIT ?{lock}",
                    (now, *[p.value for p in platforms], limit),
                )
            ]
            if rows:
                await conn.execute(
                    "UPDATE outbox SET status = 'sending', updated_at = ? "
                    f"WHERE id IN ({_marks(rows)})",
                    (int(now), *[row.id for row in rows]),
                )
        return rows

    async def next_due(self, platforms: list[Platform]) -> float | None:
        """When the earliest pending alert falls due, or None if nothing is pending."""
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
            f"AND platform IN ({_marks(platforms)})",
            [p.value for p in platforms],
        )
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
                (1 if count else 0, float(at), int(now), error[:200], row.id),
            )

    async def mark_failed(self, row: OutboxRow, now: float, error: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = ?, "
                "last_error = ? WHERE id = ?",
                (int(now), error[:200], row.id),
            )

    async def mark_dropped(self, row: OutboxRow, now: float, why: str) -> None:
        """Not sent, on purpose: ``why`` says what made it untrue or needless."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET status = 'dropped', updated_at = ?, last_error = ? WHERE id = ?",
                (int(now), why[:200], row.id),
            )

    async def overtaken(self, row: OutboxRow) -> bool:
        """Whether a later correction on the same fact is queued or sent to the same chat: it
        is worded when sent, with the fact as it stands then, so it says all this one would."""
        fact_prefix = row.event_id.rpartition(":")[0] + ":"
        found = await self.db.fetchone(
            "SELECT 1 FROM outbox WHERE kind = 'correction' AND platform = ? AND chat_id = ? "
            "AND id > ? AND status IN ('pending', 'sending', 'sent') AND event_id LIKE ? LIMIT 1",
            (row.platform.value, row.chat_id, row.id, fact_prefix + "%"),
        )
        return found is not None

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
        rows = await self.db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        counts = {str(r[0]): int(r[1]) for r in rows}
        statuses = ("pending", "sending", "sent", "gone", "failed", "dropped")
        return {s: counts.get(s, 0) for s in statuses}

    async def outbox_by_event(self) -> list[tuple[str, str, str, int]]:
        """(kind, event id or subject, status, rows); answers are counted together, never
        listed one by one, as each names a waiting question."""
        rows = await self.db.fetchall(
            "SELECT kind, CASE kind WHEN 'answer' THEN 'answers found' ELSE event_id END AS what, "
            "status, COUNT(*) FROM outbox GROUP BY kind, what, status ORDER BY kind, what"
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    async def purge_delivered(self, before: float) -> int:
        async with self.db.transaction() as conn:
            return await conn.execute(
                "DELETE FROM outbox WHERE status IN ('sent', 'gone', 'failed', 'dropped') "
                "AND updated_at < ?",
                (int(before),),
            )

    # -- updates taken by some process ---------------------------------------------------------

    async def take_update(self, update_id: int, now: float) -> bool:
        """True for the first process to take ``update_id``; False for a copy of it."""
        async with self.db.transaction() as conn:
            taken = await conn.execute(
                "INSERT INTO processed_updates (update_id, created_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (update_id, int(now)),
            )
        return taken == 1

    async def purge_processed_updates(self, before: float) -> int:
        async with self.db.transaction() as conn:
            return await conn.execute(
                "DELETE FROM processed_updates WHERE created_at < ?", (int(before),)
            )

    # -- flood buckets (PostgreSQL only: shared by every process) -----------------------------

    async def spend_flood_token(
        self, sender: str, capacity: float, per_second: float
    ) -> FloodBucket:
        """Refill ``sender``'s bucket on the database's clock and take a token if it has one,
        in one statement: concurrent processes each see the other's spending.

        ``sender`` is a keyed pseudonym; the store has no table for it on SQLite.
        """
        if self.db.dialect is not Dialect.POSTGRES:
            raise RuntimeError("shared flood buckets need PostgreSQL")
        row = await self.db.fetchone(SPEND_FLOOD_TOKEN, (sender, capacity, per_second))
        if row is None:  # INSERT ... ON CONFLICT DO UPDATE returns its row either way
            raise RuntimeError("the flood bucket statement returned no row")
        return FloodBucket(verdict=int(row[0]), tokens=float(row[1]))

    async def purge_full_flood_buckets(self) -> int:
        """Delete the buckets that are full again: such a sender is as good as new."""
        if self.db.dialect is not Dialect.POSTGRES:
            return 0
        async with self.db.transaction() as conn:
            return await conn.execute(
                "DELETE FROM flood_buckets WHERE full_at <= extract(epoch FROM clock_timestamp())"
            )

    # -- curation ------------------------------------------------------------------------------

    async def runtime_entry(self, kind: str, entry_id: str) -> str | None:
        """The JSON payload of one run-time entry, or None."""
        row = await self.db.fetchone(
            "SELECT payload FROM runtime_entries WHERE kind = ? AND entry_id = ?", (kind, entry_id)
        )
        return None if row is None else str(row[0])

    @staticmethod
    async def announce_entry_in(
        conn: Session, kind: str, entry_id: str, origin: str = PROCESS_ORIGIN
    ) -> None:
        """PostgreSQL: tell every process listening that an entry changed; sent on commit, so
        they read it once it is there. SQLite serves one process: nobody to tell."""
        if conn.dialect is Dialect.POSTGRES:
            payload = json.dumps({"kind": kind, "id": entry_id, "origin": origin})
            await conn.fetchone("SELECT pg_notify(?, ?)", (ENTRIES_CHANNEL, payload))

    async def runtime_entries(self) -> list[tuple[str, str]]:
        """(kind, JSON payload) of every entry added or changed at run time, oldest first."""
        # rowid: SQLite's implicit one, an identity column of the same name in PostgreSQL.
        rows = await self.db.fetchall(
            "SELECT kind, payload FROM runtime_entries ORDER BY updated_at, rowid"
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    @staticmethod
    async def save_entry_in(
        conn: Session,
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
        row = await conn.fetchone(
            "INSERT INTO audit (at, actor, action, kind, entry_id, before, after, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        return int(row[0]) if row else 0

    async def audit(self, entry_id: str | None, limit: int = 10) -> list[dict[str, object]]:
        query = "SELECT at, actor, action, kind, entry_id, before, after, reason FROM audit"
        params: tuple[object, ...] = ()
        if entry_id:
            query += " WHERE entry_id = ?"
            params = (entry_id,)
        rows = await self.db.fetchall(query + " ORDER BY id DESC LIMIT ?", (*params, limit))
        columns = ("at", "actor", "action", "kind", "entry_id", "before", "after", "reason")
        return [dict(zip(columns, row, strict=True)) for row in rows]

    async def count_refused_admin(self, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO refused_admin_attempts (day, count) VALUES (?, 1) "
                "ON CONFLICT (day) DO UPDATE SET count = refused_admin_attempts.count + 1",
                (day_of(now),),
            )

    async def unanswered(self, since_day: str, limit: int = 15) -> list[tuple[str, int]]:
        rows = await self.db.fetchall(
            "SELECT normalized, SUM(count) AS n FROM declined_questions WHERE day >= ? "
            "GROUP BY normalized ORDER BY n DESC, normalized LIMIT ?",
            (since_day, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def question_days(self, since_day: str) -> list[tuple[str, int, int]]:
        """(day, answered, declined) per day since ``since_day``."""
        rows = await self.db.fetchall(
            "SELECT day, SUM(CASE WHEN answered = 1 THEN count ELSE 0 END), "
            "SUM(CASE WHEN answered = 1 THEN 0 ELSE count END) FROM question_counts "
            "WHERE day >= ? GROUP BY day ORDER BY day",
            (since_day,),
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def top_entries(self, since_day: str, limit: int = 5) -> list[tuple[str, int]]:
        rows = await self.db.fetchall(
            "SELECT entry_id, SUM(count) AS n FROM answer_counts WHERE day >= ? "
            "GROUP BY entry_id ORDER BY n DESC, entry_id LIMIT ?",
            (since_day, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def refused_admin_total(self) -> int:
        row = await self.db.fetchone("SELECT COALESCE(SUM(count), 0) FROM refused_admin_attempts")
        return int(row[0]) if row else 0

    async def expire_declined(self, before_day: str) -> int:
        async with self.db.transaction() as conn:
            return await conn.execute(
                "DELETE FROM declined_questions WHERE day < ?", (before_day,)
            )

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
            "subscriptions": subscriptions,
            "alerts": alerts,
            "language": language,
            "waiting": waiting,
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
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM waiting_questions "
            "WHERE platform = ? AND chat_id = ? AND expires_at > ?",
            (chat.platform.value, chat.chat_id, int(now)),
        )
        return int(row[0]) if row else 0

    async def waiting_questions(self, now: float) -> list[WaitingQuestion]:
        """Every question still waiting (not expired), oldest first."""
        rows = await self.db.fetchall(
            "SELECT id, platform, chat_id, question, language FROM waiting_questions "
            "WHERE expires_at > ? ORDER BY id",
            (int(now),),
        )
        return [
            WaitingQuestion(
                id=r[0], platform=Platform(r[1]), chat_id=r[2], question=r[3], language=r[4]
            )
            for r in rows
        ]

    async def waiting_by_wording(self, now: float, limit: int = 15) -> list[tuple[str, int]]:
        """How many chats wait on each wording; never which ones."""
        rows = await self.db.fetchall(
            "SELECT question, COUNT(*) AS n FROM waiting_questions WHERE expires_at > ? "
            "GROUP BY question ORDER BY n DESC, question LIMIT ?",
            (int(now), limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def answer_found(self, waiting: WaitingQuestion, payload: str, now: float) -> bool:
        """Queue the answer (``payload``) for the chat that waited and forget the question, in
        one transaction; False if the question is gone already (answered, forgotten, expired)."""
        async with self.db.transaction() as conn:
            deleted = await conn.execute(
                "DELETE FROM waiting_questions WHERE id = ? AND expires_at > ?",
                (waiting.id, int(now)),
            )
            if deleted == 0:
                return False
            await conn.execute(
                "INSERT INTO outbox (kind, event_id, payload, platform, chat_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            return await conn.execute(
                "DELETE FROM waiting_questions WHERE expires_at <= ?", (int(now),)
            )

    @staticmethod
    async def queue_rematch_in(conn: Session, entry_id: str, now: float) -> None:
        """Mark an entry to match the waiting questions against (inside the caller's
        transaction, so a crash before the matching only delays it)."""
        await conn.execute(
            "INSERT INTO rematch_queue (entry_id, queued_at) VALUES (?, ?) "
            "ON CONFLICT (entry_id) DO UPDATE SET queued_at = excluded.queued_at",
            (entry_id, int(now)),
        )

    async def rematch_queue(self) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT entry_id FROM rematch_queue ORDER BY queued_at, entry_id"
        )
        return [str(r[0]) for r in rows]

    async def rematched(self, entry_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM rematch_queue WHERE entry_id = ?", (entry_id,))

    # -- corrections ---------------------------------------------------------------------------

    @staticmethod
    async def queue_correction_in(
        conn: Session, subject: str, topics: list[str], payload: str, now: float
    ) -> int:
        """One correction per chat following any of ``topics``, unless it opted out."""
        return await conn.execute(
            "INSERT INTO outbox (kind, event_id, payload, platform, chat_id, updated_at) "
            "SELECT DISTINCT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), s.platform, "
            "s.chat_id, CAST(? AS BIGINT) FROM subscriptions AS s "
            f"WHERE s.topic IN ({_marks(topics)}) AND NOT EXISTS (SELECT 1 FROM correction_optouts "
            "AS o WHERE o.platform = s.platform AND o.chat_id = s.chat_id) ON CONFLICT DO NOTHING",
            (OutboxKind.CORRECTION.value, subject, payload, int(now), *topics),
        )

    async def wants_corrections(self, chat: ChatRef) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM correction_optouts WHERE platform = ? AND chat_id = ?",
            (chat.platform.value, chat.chat_id),
        )
        return row is None

    async def set_corrections(self, chat: ChatRef, wanted: bool, now: float) -> None:
        async with self.db.transaction() as conn:
            if wanted:
                await conn.execute(
                    "DELETE FROM correction_optouts WHERE platform = ? AND chat_id = ?",
                    (chat.platform.value, chat.chat_id),
                )
            else:
                await conn.execute(
                    "INSERT INTO correction_optouts (platform, chat_id, created_at) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (chat.platform.value, chat.chat_id, int(now)),
                )


def _marks(values: Sized) -> str:
    """``?, ?, ?`` for an IN list; ``NULL`` (which matches nothing) for an empty one."""
    return ", ".join("?" * len(values)) or "NULL"

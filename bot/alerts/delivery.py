"""Worker: claim due outbox rows, wait on the rate limiter, send, record the outcome.

Guarantees: a row is claimed by one worker only (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
``FOR UPDATE SKIP LOCKED``); a chat gets an event at most once per row, and the UNIQUE (event,
chat) key makes one row per pair. Across processes one worker at a time sends for a platform
(bot/store/leadership.py), so its pacing is the bot's. A crash after a claim leaves rows in
``sending``; the next worker to send for that platform puts them back (at-least-once: the only
window for a duplicate is between the platform accepting a message and our commit, a few
milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot import answers
from bot.alerts import notices
from bot.alerts.notices import AnswerFound, Correction
from bot.alerts.ratelimit import RateLimiter
from bot.clock import Clock, day_of
from bot.config import AlertSettings
from bot.domain import Platform, Reply
from bot.errors import ChatMoved, DeliveryDeferred, RecipientGone, StoreUnavailable
from bot.knowledge.models import Event
from bot.library import Library
from bot.logs import pseudonym
from bot.metrics import ALERTS
from bot.store.repositories import OutboxKind, OutboxRow, Repository
from bot.transports.base import Transport

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0
# Sends under way at once, per worker (a slow send holds one of them, not the queue).
CONCURRENCY = 32
PROGRESS_EVERY = 10.0
# Telegram keeps an undelivered update for at most 24 hours: ids older than two days go.
UPDATE_IDS_KEPT = 2 * 86400


def is_group(row: OutboxRow) -> bool:
    """Telegram groups and channels have negative ids; they have a per-minute cap."""
    return row.platform is Platform.TELEGRAM and row.chat_id.startswith("-")


class DeliveryWorker:
    """Sends queued alerts through the transports, within each platform's limits."""

    def __init__(
        self,
        repository: Repository,
        library: Library,
        transports: dict[Platform, Transport],
        limiters: dict[Platform, RateLimiter],
        settings: AlertSettings,
        clock: Clock,
        *,
        default_language: str = "en",
        declined_retention_days: int = 90,
        concurrency: int = CONCURRENCY,
        poll_interval: float = 1.0,
    ) -> None:
        self.repository = repository
        self.library = library
        self.transports = transports
        self.limiters = limiters
        self.settings = settings
        self.clock = clock
        self.default_language = default_language
        self.declined_retention_days = declined_retention_days
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._last_progress = 0.0
        self.sent = 0

    def wake(self) -> None:
        """Something was just queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        platforms = list(self.transports)
        requeued = await self.repository.requeue_interrupted(platforms)
        if requeued:
            logger.info("alerts.requeued", extra={"rows": requeued})
        # A pipeline rather than batches: a slow send (a timeout) holds one slot, not the queue.
        in_flight: set[asyncio.Task[None]] = set()
        store_down = False
        try:
            while not stop.is_set():
                try:
                    await self._step(stop, platforms, in_flight)
                except StoreUnavailable as exc:
                    # A database outage is waited out (one line, no traceback), not fatal.
                    if not store_down:
                        logger.warning("alerts.store_unavailable", extra={"error": str(exc)})
                    store_down = True
                    await self._wait(stop, self.poll_interval)
                    continue
                except Exception:
                    # A bug, or a driver error nobody foresaw: alerts must not stop for good
                    # (nor take the transports down with them), so log it and try again.
                    logger.exception("alerts.step_failed")
                    await self._wait(stop, self.poll_interval)
                    continue
                if store_down:
                    logger.info("alerts.store_available")
                    store_down = False
        finally:
            # Graceful stop: sends under way finish and are recorded.
            if in_flight:
                await asyncio.wait(in_flight)

    async def _step(
        self, stop: asyncio.Event, platforms: list[Platform], in_flight: set[asyncio.Task[None]]
    ) -> None:
        """Claim what is due and free to send, start it, wait a little; ``in_flight`` (updated
        in place, so no task is lost when the store fails half-way) holds the sends under way."""
        free = self.concurrency - len(in_flight)
        rows = await self.repository.claim_due(self.clock.now(), platforms, free) if free else []
        in_flight.update(asyncio.create_task(self._deliver_guarded(row)) for row in rows)
        if in_flight:
            done, _ = await asyncio.wait(
                in_flight, timeout=0.2, return_when=asyncio.FIRST_COMPLETED
            )
            in_flight -= done
        else:
            await self._idle(stop, platforms)
        await self._report_progress()

    async def _idle(self, stop: asyncio.Event, platforms: list[Platform]) -> None:
        due = await self.repository.next_due(platforms)
        delay = self.poll_interval
        if due is not None:
            delay = min(delay, max(0.01, due - self.clock.now()))
        await self._wait(stop, delay)

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        """Until ``delay`` passes, something is queued (``wake``) or the worker stops."""
        self._wake.clear()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    async def _report_progress(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        counts = await self.repository.outbox_counts()
        if counts["pending"] or counts["sending"] or self.sent:
            logger.info("alerts.progress", extra=counts)
        # Housekeeping rides along: delivered alerts and old declined-question counts expire.
        now = self.clock.now()
        await self.repository.purge_delivered(now - self.settings.delivered_retention_days * 86400)
        await self.repository.expire_declined(day_of(now - self.declined_retention_days * 86400))
        await self.repository.expire_waiting(now)
        await self.repository.purge_processed_updates(now - UPDATE_IDS_KEPT)

    async def _deliver_guarded(self, row: OutboxRow) -> None:
        try:
            await self.deliver(row)
        except StoreUnavailable as exc:
            # The outcome could not be recorded: the row stays claimed until the next start.
            logger.warning("alerts.not_recorded", extra={"row": row.id, "error": str(exc)})
        except Exception:
            # A bug here must not stop the worker; the row stays claimed and is requeued at the
            # next start.
            logger.exception("alerts.deliver_failed", extra={"row": row.id})

    async def _event(self, event_id: str) -> Event | None:
        event = self.library.events.get(event_id)
        if event is None:
            event = await self.repository.published_event(event_id)
            if event is not None:
                self.library.put_event(event)
        return event

    async def _reply(self, row: OutboxRow) -> Reply | None:
        """What the row says, in the chat's language: the one it chose with /language, else
        the one it subscribed in (or asked its question in); None if its subject is gone."""
        lang = await self.repository.chat_language(row.chat)
        if row.kind is OutboxKind.ANSWER:
            found = AnswerFound.model_validate_json(row.payload or "{}")
            return notices.answer_found_reply(self.library, found, lang or found.language)
        lang = (
            lang or await self.repository.subscription_language(row.chat) or self.default_language
        )
        if row.kind is OutboxKind.CORRECTION:
            correction = Correction.model_validate_json(row.payload or "{}")
            return notices.correction_reply(self.library, correction, lang)
        event = await self._event(row.event_id)
        return answers.alert_reply(self.library, event, lang) if event else None

    async def deliver(self, row: OutboxRow) -> None:
        """Send one message and record what happened."""
        now = self.clock.now()
        transport = self.transports.get(row.platform)
        if transport is None:
            await self.repository.mark_failed(row, now, "no transport for its platform")
            return
        if row.kind is OutboxKind.CORRECTION and await self.repository.overtaken(row):
            await self.repository.mark_dropped(row, now, "a later notice on the fact says it")
            return
        reply = await self._reply(row)
        if reply is None:
            # A withdrawal notice for a fact restored meanwhile would be untrue.
            await self.repository.mark_dropped(row, now, "its subject is gone or changed since")
            return
        limiter = self.limiters[row.platform]
        wait = await limiter.acquire(f"{row.platform.value}:{row.chat_id}", is_group(row))
        if wait > 0:
            await self.repository.mark_retry(row, now, now + wait, "chat rate limit", count=False)
            return
        try:
            await asyncio.wait_for(transport.send(row.chat, reply), SEND_TIMEOUT)
        except DeliveryDeferred as exc:
            ALERTS.labels("deferred").inc()
            if exc.retry_after > 0:  # flood control applies to the whole platform account
                limiter.pause(exc.retry_after)
            await self._retry(row, exc.retry_after or self._backoff(row), str(exc))
        except RecipientGone:
            ALERTS.labels("gone").inc()
            logger.info("alerts.recipient_gone", extra={"chat": pseudonym(row.chat_id)})
            await self.repository.mark_gone(row, self.clock.now())
        except ChatMoved as exc:
            await self.repository.move_chat(row.chat, exc.new_chat_id)
        except TimeoutError:
            ALERTS.labels("timeout").inc()
            await self._retry(row, self._backoff(row), "timeout")
        except Exception as exc:  # a poison message: back off, then give up on this row only
            ALERTS.labels("error").inc()
            await self._retry(row, self._backoff(row), type(exc).__name__)
        else:
            await self.repository.mark_sent(row, self.clock.now())
            ALERTS.labels("sent").inc()
            self.sent += 1

    def _backoff(self, row: OutboxRow) -> float:
        return float(min(self.settings.max_backoff, 2.0**row.attempts))

    async def _retry(self, row: OutboxRow, delay: float, error: str) -> None:
        now = self.clock.now()
        if row.attempts + 1 >= self.settings.max_attempts:
            logger.warning("alerts.gave_up", extra={"row": row.id, "error": error[:100]})
            await self.repository.mark_failed(row, now, error)
        else:
            await self.repository.mark_retry(row, now, now + delay, error)

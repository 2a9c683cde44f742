"""Composition root: builds the store, library and core, then runs transports in one TaskGroup."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bot.alerts.delivery import DeliveryWorker
from bot.alerts.published import PublishedEvents
from bot.alerts.ratelimit import WINDOW, ChatLimits, RateLimiter
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.core import Core
from bot.domain import Platform
from bot.errors import ConfigError, KnowledgeError
from bot.flood import FloodGuard, FloodLimit, LocalFloodLimit, NoFloodLimit, SharedFloodLimit
from bot.knowledge.loader import parse_events_file
from bot.knowledge.models import KnowledgeBase
from bot.knowledge.validate import validate
from bot.library import Library
from bot.store.changes import EntryListener
from bot.store.db import Database, Dialect
from bot.store.leadership import ALERTS_TELEGRAM_LOCK, MATRIX_LOCK, Leadership
from bot.store.postgres import PostgresDatabase
from bot.store.repositories import Repository
from bot.transports.base import Transport
from bot.transports.console import ConsoleTransport
from bot.web import public_pages

logger = logging.getLogger(__name__)

# The advisory lock a Telegram poller holds on a PostgreSQL store: polling is single-process.
POLLING_LOCK = 0x0B07_7E1E_6A00_0001


async def alerts_status(settings: Settings) -> int:
    """Print the outbox: rows per status, then per kind and subject (event, correction)."""
    async with Database(settings.database) as db:
        repository = Repository(db)
        counts = await repository.outbox_counts()
        print("outbox: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        for kind, subject, status, n in await repository.outbox_by_event():
            print(f"  {kind:<10} {subject:<48} {status:<8} {n:>7}")
    return 0


async def publish_events(settings: Settings, kb: KnowledgeBase, path: Path) -> int:
    """Validate the events of a file against the knowledge base and publish them."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        events = parse_events_file(path, text)
    except KnowledgeError as exc:
        raise ConfigError(f"the events of {path} are not valid:\n{exc}") from None
    if not events:
        raise ConfigError(f"{path} has no events")
    merged = kb.model_copy(update={"events": [*kb.events, *events]})
    problems = [p for p in validate(merged).errors if p.startswith("event ")]
    # An event may be republished under its id, but no id of another kind is free: /fact shows
    # an event by its id, which would hide that entry.
    taken = {e.id for group in (kb.sources, kb.topics, kb.facts, kb.quotes) for e in group}
    problems += [
        f"event {e.id}: the id is taken by another entry" for e in events if e.id in taken
    ]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    async with Database(settings.database) as db:
        repository = Repository(db)
        for event in events:
            now = SystemClock().now()
            async with db.transaction() as conn:
                recipients = await repository.publish_event_in(conn, event, now)
                if recipients is not None:
                    # The running bots match the questions waiting for an answer again.
                    await repository.queue_rematch_in(conn, event.id, now)
            if recipients is None:
                print(f"{event.id}: already published, nothing queued")
            else:
                print(f"{event.id}: published, chats queued: {recipients}")
    return 0


async def chat(settings: Settings, kb: KnowledgeBase) -> int:
    """The terminal conversation; what the outbox holds for it (an answer it asked to be told
    about, an alert of a topic it follows) is printed as it comes."""
    clock = SystemClock()
    async with Database(settings.database) as db:
        repository = Repository(db)
        library = await build_library(kb, settings, repository)
        core = Core(library, settings, repository, clock, NoFloodLimit())
        console = ConsoleTransport(core)
        limiters = {Platform.CONSOLE: RateLimiter(100.0, ChatLimits(0.0, 10_000), clock)}
        worker = DeliveryWorker(
            repository,
            library,
            {Platform.CONSOLE: console},
            limiters,
            settings.alerts,
            clock,
            default_language=settings.default_language,
        )
        core.on_publish = worker.wake
        stop = asyncio.Event()
        delivering = asyncio.create_task(worker.run(stop))
        try:
            await console.run()
        finally:
            stop.set()
            await delivering
    return 0


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def build_limiters(settings: Settings, clock: Clock) -> dict[Platform, RateLimiter]:
    alerts = settings.alerts
    return {
        Platform.TELEGRAM: RateLimiter(
            alerts.telegram_per_second,
            ChatLimits(alerts.telegram_chat_interval, alerts.telegram_group_per_minute),
            clock,
        ),
        Platform.MATRIX: RateLimiter(
            alerts.matrix_per_second, ChatLimits(alerts.telegram_chat_interval, 10_000), clock
        ),
    }


def build_telegram(
    core: Core, settings: Settings, stop: asyncio.Event, limiter: RateLimiter
) -> Transport | None:
    """The Telegram transport if configured; without the "updates" role it only sends."""
    if not settings.telegram.configured:
        return None
    from bot.transports.telegram import TelegramTransport

    return TelegramTransport(
        core, settings.telegram, stop, limiter, receive="updates" in settings.roles
    )


class Senders:
    """The alert workers of this process, one per platform, each run only while this process
    leads that platform's sending (bot/store/leadership.py)."""

    def __init__(
        self,
        repository: Repository,
        library: Library,
        limiters: dict[Platform, RateLimiter],
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.library = library
        self.limiters = limiters
        self.settings = settings
        self.clock = clock
        self.workers: dict[Platform, DeliveryWorker] = {}

    def worker(self, platform: Platform, transport: Transport) -> DeliveryWorker:
        worker = DeliveryWorker(
            self.repository,
            self.library,
            {platform: transport},
            self.limiters,
            self.settings.alerts,
            self.clock,
            default_language=self.settings.default_language,
            declined_retention_days=self.settings.declined_retention_days,
        )
        self.workers[platform] = worker
        return worker

    def wake(self) -> None:
        """Something was queued: every worker of this process looks now."""
        for worker in self.workers.values():
            worker.wake()


class MatrixTerm:
    """The Matrix sync (and Matrix alerts) while this process leads it: a fresh transport each
    term, since a transport that stopped cannot run again."""

    def __init__(
        self, core: Core, settings: Settings, repository: Repository, senders: Senders
    ) -> None:
        self.core = core
        self.settings = settings
        self.repository = repository
        self.senders = senders
        self.transport: Transport | None = None

    def ready(self) -> bool:
        """Synced while leading; a standby is ready to take over, so ready too."""
        return self.transport.ready() if self.transport is not None else True

    async def run(self, term: asyncio.Event) -> None:
        from bot.transports.matrix import MatrixTransport

        transport_stop = asyncio.Event()
        transport = MatrixTransport(
            self.core,
            self.settings.matrix,
            self.repository,
            transport_stop,
            self.settings.local_dir / "matrix-store",
        )
        self.transport = transport
        try:
            async with asyncio.TaskGroup() as group:
                delivering = None
                if "alerts" in self.settings.roles:
                    worker = self.senders.worker(Platform.MATRIX, transport)
                    delivering = group.create_task(_run_or_stop(worker.run(term), term))
                group.create_task(_stop_transports_after(term, delivering, transport_stop))
                group.create_task(_run_or_stop(transport.run(), term))
        finally:
            self.transport = None


def flood_key(settings: Settings) -> bytes:
    """The key of sender pseudonyms in the shared flood table, alike in every process of one
    bot and never in the database: ``pseudonym_key`` if set, else derived from the bot's
    Telegram token (or Matrix access token), which every process serving the bot has; a
    process with neither answers no one, and gets a random key."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    for secret in (settings.telegram.token, settings.matrix.access_token):
        if secret is not None:
            material = secret.get_secret_value().encode()
            return hmac.new(b"advocacy-fact-bot flood pseudonyms", material, "sha256").digest()
    return secrets.token_bytes(32)


def build_flood(
    settings: Settings, db: Database, repository: Repository, clock: Clock
) -> FloodLimit:
    """The per-sender flood limit: in memory on SQLite, which serves one process; in the
    database on PostgreSQL, where processes behind one webhook must hold a sender to
    ``questions_per_minute`` together."""
    if db.dialect is not Dialect.POSTGRES:
        return LocalFloodLimit(FloodGuard(settings.questions_per_minute, clock))
    return SharedFloodLimit(repository, settings.questions_per_minute, clock, flood_key(settings))


async def build_library(kb: KnowledgeBase, settings: Settings, repository: Repository) -> Library:
    """The curated knowledge with the admins' run-time additions and edits on top."""
    library = Library(kb, settings.search)
    for kind, payload in await repository.runtime_entries():
        library.apply(kind, payload)
    # Events published from a file (`events publish`) are known to the database alone; those
    # of knowledge/ and of admins keep the versions the files and the admins' entries hold.
    await PublishedEvents(repository, library).catch_up()
    await library.prepare()
    return library


async def library_with_runtime_entries(kb: KnowledgeBase, settings: Settings) -> Library:
    """For one-shot commands: read run-time entries if the database exists, never create a
    SQLite file (a PostgreSQL database exists: it is opened, and migrated if need be)."""
    if isinstance(settings.database, Path) and not settings.database.exists():
        library = Library(kb, settings.search)
        await library.prepare()
        return library
    async with Database(settings.database) as db:
        return await build_library(kb, settings, Repository(db))


async def publish_new_knowledge_events(
    library: Library, repository: Repository, clock: Clock
) -> None:
    """Events in knowledge/ that were never published go out now."""
    for event in library.timeline():
        recipients = await repository.publish_event(event, clock.now())
        if recipients:
            logger.info("alerts.published", extra={"event": event.id, "recipients": recipients})


async def serve(settings: Settings, kb: KnowledgeBase, stop: asyncio.Event | None = None) -> int:
    """Serve every platform whose credentials are set, until SIGTERM or SIGINT.

    ``settings.roles`` says what this process does: answer updates, deliver alerts, or both.

    An embedding caller (the tests) may pass its own ``stop`` event instead; then no signal
    handlers are installed and setting the event stops the bot.
    """
    serves_pages = settings.http.public_pages and settings.http.port is not None
    if not (settings.telegram.configured or settings.matrix.configured or serves_pages):
        print(
            "error: no platform is configured: set BOT_TELEGRAM__TOKEN for Telegram, or "
            "BOT_MATRIX__HOMESERVER, BOT_MATRIX__USER_ID and BOT_MATRIX__ACCESS_TOKEN for Matrix "
            "(python -m bot chat needs none)",
            file=sys.stderr,
        )
        return 1
    if stop is None:
        stop = asyncio.Event()
        _install_signal_handlers(stop)
    problems: list[str] = []
    clock = SystemClock()
    async with Database(settings.database) as db:
        if polls_telegram(settings) and not await db.try_hold(POLLING_LOCK):
            print(
                "error: another bot process is already polling Telegram with this database: "
                "polling is single-process; stop that one, or serve a webhook "
                "(BOT_TELEGRAM__WEBHOOK_URL) to run several",
                file=sys.stderr,
            )
            return 2
        repository = Repository(db)
        library = await build_library(kb, settings, repository)
        await publish_new_knowledge_events(library, repository, clock)
        flood = build_flood(settings, db, repository, clock)
        core = Core(library, settings, repository, clock, flood)
        # Entries confirmed just before a stop may not have been matched to waiting questions.
        if core.waiting is not None:
            await core.waiting.rematch()
        limiters = build_limiters(settings, clock)
        senders = Senders(repository, library, limiters, settings, clock)
        core.on_publish = senders.wake
        try:
            # The transports stop after the delivery workers: sends under way finish on open
            # connections and are recorded, instead of failing and going out again at restart.
            transports_stop = asyncio.Event()
            telegram = build_telegram(core, settings, transports_stop, limiters[Platform.TELEGRAM])
            readiness = {Platform.TELEGRAM.value: telegram.ready} if telegram else {}
            logger.info("bot.roles", extra={"roles": ",".join(settings.roles)})
            async with asyncio.TaskGroup() as group:
                delivering = None
                if telegram is not None and "alerts" in settings.roles:
                    worker = senders.worker(Platform.TELEGRAM, telegram)
                    # The sends of a leader that just died leave the rate window first.
                    lead = Leadership(db, ALERTS_TELEGRAM_LOCK, "telegram alerts", settle=WINDOW)
                    delivering = group.create_task(_run_or_stop(lead.run(worker.run, stop), stop))
                group.create_task(_stop_transports_after(stop, delivering, transports_stop))
                if telegram is not None:
                    group.create_task(_run_or_stop(telegram.run(), stop))
                # Matrix sends only into rooms its sync knows: the process that syncs sends.
                if settings.matrix.configured and "updates" in settings.roles:
                    matrix = MatrixTerm(core, settings, repository, senders)
                    lead = Leadership(db, MATRIX_LOCK, "matrix sync")
                    group.create_task(_run_or_stop(lead.run(matrix.run, stop), stop))
                    readiness[Platform.MATRIX.value] = matrix.ready
                # Events published from a file reach this library within seconds.
                waiting = core.waiting
                followed = PublishedEvents(
                    repository, library, waiting.schedule_rematch if waiting else lambda: None
                )
                group.create_task(_run_or_stop(followed.run(stop), stop))
                if isinstance(db, PostgresDatabase):
                    # Other processes' admin changes reach this library within a second.
                    listener = EntryListener(db, repository, library)
                    group.create_task(_run_or_stop(listener.run(stop), stop))
                if settings.http.port is not None:
                    # Imported here: aiohttp's server is a tenth of the start-up of `ask`.
                    from bot.ops import OpsServer

                    ops = OpsServer(
                        settings.http.host,
                        settings.http.port,
                        repository,
                        readiness,
                        stop,
                        pages=public_pages(settings, library, repository, core.answer),
                    )
                    group.create_task(_run_or_stop(ops.run(), stop))
        except* ConfigError as errors:
            problems += [str(e) for e in _leaves(errors)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    logger.info("bot.stopped")
    return 2 if problems else 0


def _leaves(group: BaseExceptionGroup[ConfigError]) -> list[ConfigError]:
    """The errors themselves: a transport's own task group nests them one level deeper."""
    found: list[ConfigError] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


async def _stop_transports_after(
    stop: asyncio.Event, delivering: asyncio.Task[None] | None, transports_stop: asyncio.Event
) -> None:
    """Stop the transports once ``stop`` is set and the delivery worker (if any) has finished."""
    try:
        await stop.wait()
        if delivering is not None:
            await asyncio.wait({delivering})
    finally:
        transports_stop.set()


def polls_telegram(settings: Settings) -> bool:
    """Whether this process takes Telegram updates by long polling (getUpdates)."""
    telegram = settings.telegram
    return "updates" in settings.roles and telegram.configured and not telegram.webhook_url


async def _run_or_stop(job: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """A transport or worker that ends stops the others too, so the process exits, not limps."""
    try:
        await job
    finally:
        stop.set()

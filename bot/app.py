"""Composition root: builds the store, library and core, then runs transports in one TaskGroup."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bot.alerts.delivery import DeliveryWorker
from bot.alerts.ratelimit import ChatLimits, RateLimiter
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.core import Core
from bot.domain import Platform
from bot.errors import ConfigError
from bot.flood import FloodGuard, FloodLimit, LocalFloodLimit, SharedFloodLimit
from bot.knowledge.loader import parse_file
from bot.knowledge.models import Event, KnowledgeBase
from bot.knowledge.validate import validate
from bot.library import Library
from bot.ops import OpsServer
from bot.store.changes import EntryListener
from bot.store.db import Database, Dialect
from bot.store.postgres import PostgresDatabase
from bot.store.repositories import Repository
from bot.transports.base import Transport
from bot.transports.console import ConsoleTransport
from bot.web import public_pages

logger = logging.getLogger(__name__)

# The advisory lock a Telegram poller holds on a PostgreSQL store: polling is single-process.
POLLING_LOCK = 0x0B07_7E1E_6A00_0001
# Where a PostgreSQL store keeps the key of flood pseudonyms when BOT_PSEUDONYM_KEY is unset.
FLOOD_KEY = "flood_pseudonym_key"


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
        parsed = await asyncio.to_thread(parse_file, path, path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    events = [e for e in parsed.get("events", []) if isinstance(e, Event)]
    if not events:
        raise ConfigError(f"{path} has no events")
    merged = kb.model_copy(update={"events": [*kb.events, *events]})
    problems = [p for p in validate(merged).errors if p.startswith("event ")]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    async with Database(settings.database) as db:
        repository = Repository(db)
        for event in events:
            recipients = await repository.publish_event(event, SystemClock().now())
            if recipients is None:
                print(f"{event.id}: already published, nothing queued")
            else:
                print(f"{event.id}: published, queued for {recipients} chats")
    return 0


async def chat(settings: Settings, kb: KnowledgeBase) -> int:
    """The terminal conversation; what the outbox holds for it (an answer it asked to be told
    about, an alert of a topic it follows) is printed as it comes."""
    clock = SystemClock()
    async with Database(settings.database) as db:
        repository = Repository(db)
        library = await build_library(kb, settings, repository)
        flood = await build_flood(settings, db, repository, clock)
        core = Core(library, settings, repository, clock, flood)
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


def build_transports(
    core: Core,
    settings: Settings,
    stop: asyncio.Event,
    limiters: dict[Platform, RateLimiter],
    repository: Repository,
) -> dict[Platform, Transport]:
    """The transports of the configured platforms. Without the "updates" role Telegram only
    sends (alerts) and Matrix is left out: it can send only into rooms its sync knows."""
    receives = "updates" in settings.roles
    transports: dict[Platform, Transport] = {}
    if settings.telegram.configured:
        from bot.transports.telegram import TelegramTransport

        transports[Platform.TELEGRAM] = TelegramTransport(
            core, settings.telegram, stop, limiters[Platform.TELEGRAM], receive=receives
        )
    if settings.matrix.configured and receives:
        from bot.transports.matrix import MatrixTransport

        transports[Platform.MATRIX] = MatrixTransport(
            core, settings.matrix, repository, stop, settings.local_dir / "matrix-store"
        )
    return transports


async def build_flood(
    settings: Settings, db: Database, repository: Repository, clock: Clock
) -> FloodLimit:
    """The per-sender flood limit: in memory on SQLite, which serves one process; in the
    database on PostgreSQL, where processes behind one webhook must hold a sender to
    ``questions_per_minute`` together.

    Every process must name a sender alike: with ``pseudonym_key`` when it is set (the same for
    all of them, and not in the database), else with a random key the first process stores.
    """
    if db.dialect is not Dialect.POSTGRES:
        return LocalFloodLimit(FloodGuard(settings.questions_per_minute, clock))
    if settings.pseudonym_key is not None:
        key = settings.pseudonym_key.get_secret_value()
    else:
        key = await repository.first_value(FLOOD_KEY, secrets.token_hex(32))
    return SharedFloodLimit(repository, settings.questions_per_minute, clock, key.encode())


async def build_library(kb: KnowledgeBase, settings: Settings, repository: Repository) -> Library:
    """The curated knowledge with the admins' run-time additions and edits on top."""
    library = Library(kb, settings.search)
    for kind, payload in await repository.runtime_entries():
        library.apply(kind, payload)
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
    """Events in knowledge/ that were never published go out now; published ones join the library."""
    for event in library.timeline():
        recipients = await repository.publish_event(event, clock.now())
        if recipients:
            logger.info("alerts.published", extra={"event": event.id, "recipients": recipients})
    for event in await repository.published_events():
        library.put_event(event)


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
        flood = await build_flood(settings, db, repository, clock)
        core = Core(library, settings, repository, clock, flood)
        # Entries confirmed just before a stop may not have been matched to waiting questions.
        if core.waiting is not None:
            await core.waiting.rematch()
        limiters = build_limiters(settings, clock)
        try:
            # The transports stop after the delivery worker: sends under way finish on open
            # connections and are recorded, instead of failing and going out again at restart.
            transports_stop = asyncio.Event()
            transports = build_transports(core, settings, transports_stop, limiters, repository)
            delivers = "alerts" in settings.roles
            worker = DeliveryWorker(
                repository,
                library,
                transports,
                limiters,
                settings.alerts,
                clock,
                default_language=settings.default_language,
                declined_retention_days=settings.declined_retention_days,
            )
            if delivers:
                core.on_publish = worker.wake
            logger.info("bot.roles", extra={"roles": ",".join(settings.roles)})
            async with asyncio.TaskGroup() as group:
                delivering = (
                    group.create_task(_run_or_stop(worker.run(stop), stop)) if delivers else None
                )
                group.create_task(_stop_transports_after(stop, delivering, transports_stop))
                for transport in transports.values():
                    group.create_task(_run_or_stop(transport.run(), stop))
                if isinstance(db, PostgresDatabase):
                    # Other processes' admin changes reach this library within a second.
                    listener = EntryListener(db, repository, library)
                    group.create_task(_run_or_stop(listener.run(stop), stop))
                if settings.http.port is not None:
                    readiness = {p.value: t.ready for p, t in transports.items()}
                    ops = OpsServer(
                        settings.http.host,
                        settings.http.port,
                        repository,
                        readiness,
                        stop,
                        pages=public_pages(settings, library, repository),
                    )
                    group.create_task(_run_or_stop(ops.run(), stop))
        except* ConfigError as errors:
            problems += [str(e) for e in errors.exceptions]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    logger.info("bot.stopped")
    return 2 if problems else 0


async def _stop_transports_after(
    stop: asyncio.Event, delivering: asyncio.Task[None] | None, transports_stop: asyncio.Event
) -> None:
    """Stop the transports once the bot stops and the delivery worker (if any) has finished."""
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

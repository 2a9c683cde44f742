"""Admin changes made in another process, applied here (PostgreSQL's LISTEN/NOTIFY).

A curation save announces ``{"kind", "id", "origin"}`` on ``ENTRIES_CHANNEL`` in its transaction
(delivered on commit). Every process listens on a connection of its own, reads the entry back
from ``runtime_entries`` and applies it to its library, the semantic index included. When the
listening connection is lost, it reconnects and re-applies every run-time entry, since
notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Final

import asyncpg

from bot.library import Library
from bot.store.postgres import CONNECT_TIMEOUT, PostgresDatabase
from bot.store.repositories import ENTRIES_CHANNEL, PROCESS_ORIGIN, Repository

logger = logging.getLogger(__name__)

MAX_RETRY: Final = 30.0


class EntryListener:
    """Keeps ``library`` up to date with the run-time entries other processes save."""

    def __init__(self, db: PostgresDatabase, repository: Repository, library: Library) -> None:
        self.db = db
        self.repository = repository
        self.library = library
        self.listening = asyncio.Event()  # set while notifications arrive (for tests)
        self._changed: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def _on_notification(
        self,
        conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        pid: int,
        channel: str,
        payload: object,
    ) -> None:
        try:
            change = json.loads(str(payload))
            kind, entry_id, origin = str(change["kind"]), str(change["id"]), change.get("origin")
        except (ValueError, KeyError, TypeError):
            logger.warning("entries.bad_notification")
            return
        if origin != PROCESS_ORIGIN:
            self._changed.put_nowait((kind, entry_id))

    async def run(self, stop: asyncio.Event) -> None:
        applying = asyncio.create_task(self._apply_changes())
        delay, first = 1.0, True
        try:
            while not stop.is_set():
                try:
                    await self._listen(stop, catch_up=not first)
                    delay, first = 1.0, False
                except (
                    OSError,
                    TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    logger.warning(
                        "entries.listen_failed",
                        extra={"error": type(exc).__name__, "retry_in": delay},
                    )
                    first = False
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    delay = min(delay * 2, MAX_RETRY)
        finally:
            applying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applying

    async def _listen(self, stop: asyncio.Event, *, catch_up: bool) -> None:
        """Listen until stopped or the connection is lost; after a loss, catch up first."""
        conn = await asyncpg.connect(
            self.db.url.dsn,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": "advocacy-fact-bot listener"},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(ENTRIES_CHANNEL, self._on_notification)
            if catch_up:
                await self._reapply_all()
            self.listening.set()
            logger.info("entries.listening")
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if lost.is_set() and not stop.is_set():
                raise ConnectionResetError("the listening connection was lost")
        finally:
            self.listening.clear()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.close(timeout=5)

    async def _reapply_all(self) -> None:
        for kind, payload in await self.repository.runtime_entries():
            self.library.apply(kind, payload)
        await self.library.prepare()

    async def _apply_changes(self) -> None:
        while True:
            kind, entry_id = await self._changed.get()
            try:
                payload = await self.repository.runtime_entry(kind, entry_id)
                if payload is None:
                    continue
                self.library.apply(kind, payload)
                await self.library.prepare()  # embeds what changed
                logger.info("entries.applied", extra={"kind": kind, "entry": entry_id})
            except Exception:
                # One bad entry must not stop the others from arriving.
                logger.exception("entries.apply_failed", extra={"kind": kind, "entry": entry_id})
